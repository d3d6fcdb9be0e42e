import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/modules.ts';
import { API_TOKEN, createWorld, type TestWorld } from './helpers/env.ts';
import { ROOT, startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

const run = promisify(execFile);
let world: TestWorld;
let tally: InProcessTally;
let blocks: { lang: string; code: string }[];

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world, ['api', 'worker']);
  const doc = await readFile(join(ROOT, 'docs', 'producers.md'), 'utf8');
  blocks = [...doc.matchAll(/```(\w+) runnable\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, code: m[2]! }));
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

async function hasPython(): Promise<boolean> {
  return run('python3', ['--version']).then(() => true, () => false);
}

describe('docs/producers.md: the runnable examples, verbatim', () => {
  it('has runnable curl and python blocks', () => {
    expect(blocks.filter((b) => b.lang === 'bash').length).toBeGreaterThanOrEqual(2);
    expect(blocks.filter((b) => b.lang === 'python')).toHaveLength(1);
  });

  it('the curl blocks run against a live tally and answer what the doc says', async () => {
    const env = { ...process.env, TALLY_URL: tally.base, TALLY_API_TOKEN: API_TOKEN };
    const [ingest, wait] = blocks.filter((b) => b.lang === 'bash').map((b) => b.code);
    const first = JSON.parse((await run('bash', ['-ec', ingest!], { env })).stdout);
    expect(first.accepted).toEqual(['signup-bonus-u42', 'llm-req-9f1']);
    expect(first.rejected).toMatchObject([{ index: 2, event_id: 'oops', code: 'invalid_payload' }]);
    // The guarded charge below needs the grant applied first: the first call did not wait for it.
    await waitFor('the grant to be applied', async () => (await world.sql`SELECT 1 FROM processed_events WHERE event_id = 'signup-bonus-u42'`).length > 0);
    const second = JSON.parse((await run('bash', ['-ec', wait!], { env })).stdout);
    expect(second.results[0]).toMatchObject({ outcome: 'applied', amount: 3 });
    // The same call again: the event is not applied twice.
    const third = JSON.parse((await run('bash', ['-ec', wait!], { env })).stdout);
    expect(['applied', 'noop_duplicate']).toContain(third.results[0].outcome);
    expect(third.results[0].transaction_id).toBe(second.results[0].transaction_id);
  });

  it('the standard-library python block runs (when python3 is installed)', async (ctx) => {
    if (!(await hasPython())) ctx.skip();
    const code = blocks.find((b) => b.lang === 'python')!.code;
    const { stdout } = await run('python3', ['-c', code], { env: { ...process.env, TALLY_URL: tally.base, TALLY_API_TOKEN: API_TOKEN } });
    expect(JSON.parse(stdout).results[0]).toMatchObject({ outcome: 'applied', amount: 50 });
  });
});
