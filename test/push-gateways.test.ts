import '../src/modules.ts';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushSettings } from '../src/push/settings.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { spawnTally, startTally, waitFor, type InProcessTally } from './helpers/tally.ts';
import { insertOutbox } from '../src/ledger/sql/outbox.ts';
import { outboxCommitted } from '../src/outbox/after-commit.ts';
import { connectClient, tokenFor, type PushClient } from './helpers/ws-client.ts';

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

  it('a client that saw events on one process resumes with since on the other and gets exactly what it missed', async () => {
    const commit = async (key: string) => {
      await world.sql.begin((tx) => insertOutbox(tx, [{ user_id: 'm-carol', type: 'balance_changed', data: { key } }]));
      outboxCommitted(1);
    };
    const here = await connectClient(tally.base, 'm-carol');
    await commit('a');
    await commit('b');
    await here.waitFor(2);
    here.ws.terminate();
    await commit('c');
    await commit('d');
    const there = await connectClient(childBase, 'm-carol', { since: here.messages[1]!.id });
    try {
      await commit('e');
      await there.waitFor(3);
      await new Promise((r) => setTimeout(r, 300));
      expect(there.messages.map((m) => m.data.key)).toEqual(['c', 'd', 'e']);
    } finally {
      there.ws.terminate();
    }
  });

  it('the per-user socket cap holds across both processes: the user’s oldest socket, on the other process, is closed with 4008', async () => {
    const token = tokenFor('m-dave');
    const sockets: PushClient[] = [];
    try {
      for (let i = 0; i < 10; i++) sockets.push(await connectClient(tally.base, 'm-dave', { token }));
      for (let i = 0; i < 10; i++) sockets.push(await connectClient(childBase, 'm-dave', { token }));
      await new Promise((r) => setTimeout(r, 200));
      expect(sockets.filter((c) => c.closed)).toHaveLength(0); // 20 = the default cap
      sockets.push(await connectClient(childBase, 'm-dave', { token }));
      expect(await sockets[0]!.waitClosed(5_000)).toBe(4008);
      sockets.push(await connectClient(tally.base, 'm-dave', { token }));
      expect(await sockets[1]!.waitClosed(5_000)).toBe(4008);
      await new Promise((r) => setTimeout(r, 300));
      expect(sockets.filter((c) => !c.closed)).toHaveLength(20);
    } finally {
      for (const c of sockets) c.ws.terminate();
    }
  });
});
