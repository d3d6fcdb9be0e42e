import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { startProxy } from './helpers/proxy.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { spawnTally, startTally, waitFor } from './helpers/tally.ts';
import { TallyProducer } from '../src/producers/index.ts';
import { REDIS_URL } from './helpers/env.ts';

let world: TestWorld;
let producer: TallyProducer;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  producer = new TallyProducer({ redis: REDIS_URL, prefix: world.env.TALLY_PREFIX });
});
afterAll(async () => {
  await producer?.close();
  await world?.drop();
});

describe('graceful shutdown', () => {
  it('on SIGTERM a worker stops taking jobs, finishes the in-flight ones and exits 0; nothing is left active, all apply once', async () => {
    const N = 300;
    const grants = producer.queue('grants');
    // Hold every ledger transaction at its account lock, so the jobs the worker takes stay in flight.
    const blocker = await world.sql.reserve();
    await blocker`BEGIN`;
    await blocker`LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE`;

    const child = spawnTally(world, ['start', '--role', 'worker'], { TALLY_WORKER_CONCURRENCY: '40' });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = once(child, 'exit');
    let inFlight = 0;
    try {
      await producer.grantBulk(
        Array.from({ length: N }, (_, i) => ({ event_id: `sd-${i}`, user_id: `u${i % 30}`, asset: 'points', amount: 1 + (i % 7), source: 'gift' })),
        { batch: false },
      );
      inFlight = await waitFor('the worker to take jobs', async () => {
        const n = await grants.getActiveCount();
        return n >= 10 ? n : undefined;
      }, 30_000, 100);
      expect(inFlight).toBeLessThanOrEqual(40);

      child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 1500));
      expect(child.exitCode).toBeNull(); // still finishing what it holds
      expect(await grants.getActiveCount()).toBeGreaterThan(0);

      await blocker`COMMIT`; // the in-flight transactions may proceed now
      const [code] = (await Promise.race([exited, new Promise((_, rej) => setTimeout(() => rej(new Error(`no exit; stderr: ${stderr}`)), 25_000))])) as [number];
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      blocker.release();
    }

    // Nothing was left active (so nothing can stall), nothing failed, and the rest waits for the next worker.
    const counts = await grants.getJobCounts('active', 'completed', 'waiting', 'delayed', 'failed');
    expect(counts.active).toBe(0);
    expect(counts.failed).toBe(0);
    expect(counts.delayed).toBe(0); // the lock was released within the grace period: nothing needed to be put back
    expect(counts.completed).toBeGreaterThanOrEqual(inFlight); // what was in flight at SIGTERM finished
    expect((counts.completed ?? 0) + (counts.waiting ?? 0) + (counts.delayed ?? 0)).toBe(N);

    // The next worker drains the rest; every event took effect exactly once.
    const next = await startTally(world, ['worker']);
    try {
      await waitFor('every job to complete', async () => (await grants.getCompletedCount()) === N, 60_000, 200);
    } finally {
      await next.stop();
    }
    const [pe] = await world.sql`SELECT count(*)::int AS n FROM processed_events WHERE queue = 'grants'`;
    const [le] = await world.sql`SELECT count(*)::int AS n, sum(amount)::int AS total FROM ledger_entries`;
    expect(pe!.n).toBe(N);
    expect(le!.n).toBe(N);
    expect(le!.total).toBe(Array.from({ length: N }, (_, i) => 1 + (i % 7)).reduce((a, b) => a + b, 0));
    await expectInvariants(world.sql);
  });

  it('a worker stuck retrying through a PostgreSQL outage exits within the grace period, its jobs put back, not left active', async () => {
    const N = 50;
    const grants = producer.queue('grants');
    const pg = await startProxy(5432);
    const url = new URL(world.env.DATABASE_URL);
    url.port = String(pg.port);
    const child = spawnTally(world, ['start', '--role', 'worker'], { DATABASE_URL: url.toString() });
    const exited = once(child, 'exit');
    try {
      await producer.grant({ event_id: 'pg-warm', user_id: 'w', asset: 'points', amount: 1, source: 'gift' }, { wait: true });
      await pg.cut(); // PostgreSQL unreachable for this worker from now on
      await producer.grantBulk(Array.from({ length: N }, (_, i) => ({ event_id: `pg-${i}`, user_id: `p${i % 5}`, asset: 'points', amount: 2, source: 'gift' })), { batch: false });
      await waitFor('the worker to hold jobs it cannot apply', async () => (await grants.getActiveCount()) > 0, 20_000, 100);
      await new Promise((r) => setTimeout(r, 500));

      const t0 = Date.now();
      child.kill('SIGTERM');
      const [code] = (await Promise.race([exited, new Promise((_, rej) => setTimeout(() => rej(new Error('no exit within 28 s')), 28_000))])) as [number];
      expect(code).toBe(0);
      // The 10 s grace, then the batcher closes and the retry loop ends at its next attempt (backoff ≤ 5 s).
      expect(Date.now() - t0).toBeLessThan(20_000);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await pg.close();
    }
    const counts = await grants.getJobCounts('active', 'waiting', 'delayed', 'failed', 'completed');
    expect(counts.active).toBe(0);
    expect(counts.failed).toBe(0);
    expect((counts.waiting ?? 0) + (counts.delayed ?? 0)).toBe(N);

    const next = await startTally(world, ['worker']);
    try {
      await waitFor('the put-back jobs to be applied', async () => {
        const [pe] = await world.sql`SELECT count(*)::int AS n FROM processed_events WHERE event_id LIKE 'pg-%'`;
        return pe!.n === N + 1;
      }, 30_000, 200);
    } finally {
      await next.stop();
    }
    await expectInvariants(world.sql);
  });
});
