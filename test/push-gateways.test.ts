import '../src/modules.ts';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushSettings } from '../src/push/settings.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { spawnTally, startTally, waitFor, type InProcessTally } from './helpers/tally.ts';
import { connectClient } from './helpers/ws-client.ts';

let world: TestWorld;
let tally: InProcessTally;
let child: ChildProcess | undefined;
let childBase: string;

/** A second API process (its own gateway), as `tally start --role api`; its port is read from its start log. */
async function startApiProcess(): Promise<string> {
  child = spawnTally(world, ['start', '--role', 'api'], { LOG_LEVEL: 'info' });
  let log = '';
  child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const port = await waitFor('second api process', async () => {
    for (const line of log.split('\n')) {
      if (!line.includes('"tally started"')) continue;
      return (JSON.parse(line) as { port?: number }).port;
    }
    if (child!.exitCode !== null) throw new Error(`api process exited: ${log}`);
    return undefined;
  }, 60_000, 100);
  return `http://127.0.0.1:${port}`;
}

beforeAll(async () => {
  Object.assign(pushSettings, { sweepEveryMs: 500 });
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world);
  childBase = await startApiProcess();
});
afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await tally?.stop();
  await world?.drop();
});

describe('fanout across API processes', () => {
  it('two gateway processes, each with a client of the same user: both receive every event, once', async () => {
    const here = await connectClient(tally.base, 'm-alice');
    const there = await connectClient(childBase, 'm-alice');
    const stranger = await connectClient(childBase, 'm-bob');
    try {
      const g = (await tally.producer.grant({ event_id: `mg-${Date.now()}`, user_id: 'm-alice', asset: 'points', amount: 30, source: 'gift' }, { wait: true })) as any;
      const c = (await tally.producer.charge(
        { event_id: `mc-${Date.now()}`, user_id: 'm-alice', asset: 'points', source_type: 'script', source_id: 's', policy: 'guarded' } as never,
        { wait: true },
      )) as any;
      const a = await here.waitFor(2);
      const b = await there.waitFor(2);
      expect(a.map((m) => m.data.transaction_id)).toEqual([g.transaction_id, c.transaction_id]);
      expect(b).toEqual(a);
      await new Promise((r) => setTimeout(r, 1_000)); // a sweep or two later: still exactly once per socket
      expect(here.messages).toHaveLength(2);
      expect(there.messages).toHaveLength(2);
      expect(stranger.messages).toHaveLength(0);
    } finally {
      for (const c of [here, there, stranger]) c.ws.terminate();
    }
  });
});
