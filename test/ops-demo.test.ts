import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { spawnTally } from './helpers/tally.ts';

let world: TestWorld;

beforeAll(async () => {
  world = await createWorld(); // migrated, but no config: the demo seeds it
});
afterAll(async () => {
  await world?.drop();
});

describe('tally demo', () => {
  it('on a fresh set-up with TALLY_DEV=1 and nothing running, runs a few thousand users to completion in under 2 minutes', async () => {
    const t0 = Date.now();
    const child = spawnTally(world, ['demo'], { TALLY_DEV: '1' });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const [code] = (await once(child, 'exit')) as [number];
    const seconds = (Date.now() - t0) / 1000;
    expect(code, err.slice(-2000)).toBe(0);
    expect(seconds).toBeLessThan(120);

    // The progress bar went to stderr, the report to stdout.
    expect(err).toMatch(/applied\s+\[#{30}\] [\d,]+\/[\d,]+ 100%/);
    expect(out).toMatch(/tally demo \w+: 2,000 users, [\d,]+ events sent, ([\d,]+)\/\1 finished in [\d.]+ s \([\d,]+ events\/s end to end\)/);
    expect(out).toMatch(/charges\s+applied\s+[\d,]+/);
    expect(out).toMatch(/points\s+2,00\d accounts/);
    expect(out).toMatch(/level 1 → 2, rewards \[.*"amount":50/);
    expect(out).toMatch(/Bull Board\s+http:\/\/127\.0\.0\.1:\d+\/admin\/queues/);
    expect(out).toMatch(/WebSocket\s+ws:\/\/127\.0\.0\.1:\d+\/v1\/stream\?token=[\w-]+\.[\w-]+/);

    // What the report claims is in the database, and the ledger is consistent.
    const [cfg] = await world.sql`SELECT count(*)::int AS n FROM config_documents`;
    expect(cfg!.n).toBe(1);
    const [applied] = await world.sql`SELECT count(*)::int AS n FROM processed_events WHERE queue IN ('grants', 'charges')`;
    expect(applied!.n).toBeGreaterThan(2000 * 2);
    const [users] = await world.sql`SELECT count(DISTINCT user_id)::int AS n FROM accounts`;
    expect(users!.n).toBe(2001); // 2,000 users and the one who levelled up
    await expectInvariants(world.sql);
  }, 150_000);
});
