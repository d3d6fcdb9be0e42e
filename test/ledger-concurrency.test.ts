import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { TallyProducer } from '../src/producers/index.ts';
import { deadlocks } from './helpers/deadlocks.ts';
import { createWorld, REDIS_URL, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { spawnTally, startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

const worlds: TestWorld[] = [];
const children: ChildProcess[] = [];
let tally: InProcessTally | undefined;

afterEach(async () => {
  await stopAll();
});

/** Stops tally and its worker processes: their connections close and report their statistics (deadlocks). */
async function stopAll() {
  const running = children.splice(0).filter((c) => c.exitCode === null && c.signalCode === null);
  await Promise.all(running.map((c) => new Promise((r) => (c.once('exit', r), c.kill('SIGTERM')))));
  await tally?.stop();
  tally = undefined;
}

/** Accounts are locked in one sorted order, so no transaction ever waited in a cycle (a deadlock is retried silently). */
async function expectNoDeadlock(w: TestWorld) {
  await stopAll();
  expect(await deadlocks(w.sql, w.dbName)).toBe(0);
}
afterAll(async () => {
  for (const w of worlds) await w.drop();
});

async function world(extra: Record<string, string> = {}) {
  const w = await createWorld(extra);
  worlds.push(w);
  await w.applyExampleConfig();
  return w;
}

async function drained(producer: TallyProducer, queues: string[], total: number, timeoutMs = 120_000) {
  await waitFor(
    `${total} jobs finished`,
    async () => {
      let done = 0;
      for (const q of queues) {
        const c = await producer.queue(q).getJobCounts('completed', 'failed');
        done += (c.completed ?? 0) + (c.failed ?? 0);
      }
      return done >= total;
    },
    timeoutMs,
    200,
  );
}

function startWorkerProcess(w: TestWorld, extra: Record<string, string> = {}): ChildProcess {
  const child = spawnTally(w, ['start', '--role', 'worker'], extra);
  child.stderr?.on('data', () => {}); // drain: a full pipe would block the child
  child.stdout?.on('data', () => {});
  children.push(child);
  return child;
}

describe('ledger under concurrency', () => {
  it('1,000 guarded charges of 1 racing on one account holding 300: exactly 300 applied, balance 0', async () => {
    const w = await world();
    tally = await startTally(w, ['api', 'worker']);
    await tally.producer.grant({ event_id: 'seed-300', user_id: 'hot', asset: 'points', amount: 300, source: 'recharge' }, { wait: true });
    const jobs = Array.from({ length: 1000 }, (_, i) => ({
      event_id: `race-${i}`, user_id: 'hot', asset: 'points', source_type: 'script', source_id: `s${i}`, amount: 1, policy: 'guarded' as const,
    }));
    for (let i = 0; i < jobs.length; i += 250) await tally.producer.chargeBulk(jobs.slice(i, i + 250), { batch: false });
    await drained(tally.producer, ['charges'], 1000);
    const outcomes = await w.sql<{ outcome: string; n: number }[]>`
      SELECT outcome, count(*)::int AS n FROM processed_events WHERE queue = 'charges' GROUP BY outcome ORDER BY outcome`;
    expect(outcomes).toEqual([
      { outcome: 'applied', n: 300 },
      { outcome: 'rejected_insufficient', n: 700 },
    ]);
    const bal = await tally.http('GET', '/v1/users/hot/balances/points');
    expect(bal.body).toMatchObject({ balance: 0, total_consumed: 300, overdrawn: false });
    await expectInvariants(w.sql);
    await expectNoDeadlock(w);
  });

  it('1,000 mixed grants and charges over 50 users from 2 worker processes: invariants hold, ledger sums = account totals', async () => {
    const w = await world();
    const producer = new TallyProducer({ redis: REDIS_URL, prefix: w.env.TALLY_PREFIX });
    try {
      startWorkerProcess(w);
      startWorkerProcess(w);
      const grants = [];
      const charges = [];
      for (let i = 0; i < 1000; i++) {
        const user = `u${i % 50}`;
        if (i % 3 === 0) grants.push({ event_id: `mg-${i}`, user_id: user, asset: 'points', amount: 1 + (i % 17), source: 'recharge' });
        else charges.push({ event_id: `mc-${i}`, user_id: user, asset: 'points', source_type: 'script', source_id: `x${i}`, amount: 1 + (i % 7), policy: i % 2 ? ('guarded' as const) : ('postpaid' as const) });
      }
      await Promise.all([producer.grantBulk(grants, { batch: false }), producer.chargeBulk(charges, { batch: false })]);
      await drained(producer, ['grants', 'charges'], 1000);
      const [{ n }] = (await w.sql`SELECT count(*)::int AS n FROM processed_events`) as unknown as [{ n: number }];
      expect(n).toBe(1000);
      const [{ dupes }] = (await w.sql`
        SELECT count(*)::int AS dupes FROM (SELECT event_id FROM ledger_entries WHERE event_id IS NOT NULL GROUP BY event_id HAVING count(*) > 1) d`) as unknown as [{ dupes: number }];
      expect(dupes).toBe(0);
      const failed = await producer.queue('charges').getJobCounts('failed');
      expect(failed.failed).toBe(0);
      await expectInvariants(w.sql);
      await expectNoDeadlock(w);
    } finally {
      await producer.close();
    }
  });

  it('a worker killed with SIGKILL while jobs are active: after restart every event is applied exactly once', async () => {
    const w = await world({ TALLY_LOCK_DURATION_MS: '2000' });
    const producer = new TallyProducer({ redis: REDIS_URL, prefix: w.env.TALLY_PREFIX });
    try {
      const total = 3000;
      const grants = Array.from({ length: 100 }, (_, i) => ({ event_id: `kg-${i}`, user_id: `k${i}`, asset: 'points', amount: 1000, source: 'recharge' }));
      const charges = Array.from({ length: total - 100 }, (_, i) => ({
        event_id: `kc-${i}`, user_id: `k${i % 100}`, asset: 'points', source_type: 'script', source_id: `x${i}`, amount: 1, policy: 'postpaid' as const,
      }));
      await producer.grantBulk(grants, { batch: false });
      for (let i = 0; i < charges.length; i += 500) await producer.chargeBulk(charges.slice(i, i + 500), { batch: false });

      const victim = startWorkerProcess(w);
      await waitFor('some events applied', async () => {
        const [{ n }] = (await w.sql`SELECT count(*)::int AS n FROM processed_events`) as unknown as [{ n: number }];
        return n > 200;
      }, 60_000, 10);
      victim.kill('SIGKILL');
      await new Promise((r) => victim.once('exit', r));
      const [{ n: applied }] = (await w.sql`SELECT count(*)::int AS n FROM processed_events`) as unknown as [{ n: number }];
      expect(applied).toBeLessThan(total); // it really died mid-stream

      startWorkerProcess(w);
      await drained(producer, ['grants', 'charges'], total, 120_000);
      const [{ n }] = (await w.sql`SELECT count(*)::int AS n FROM processed_events`) as unknown as [{ n: number }];
      expect(n).toBe(total);
      const [{ entries }] = (await w.sql`SELECT count(*)::int AS entries FROM ledger_entries WHERE event_id IS NOT NULL`) as unknown as [{ entries: number }];
      expect(entries).toBe(total);
      const [{ consumed }] = (await w.sql`SELECT sum(total_consumed)::int AS consumed FROM accounts`) as unknown as [{ consumed: number }];
      expect(consumed).toBe(total - 100);
      const counts = await producer.queue('charges').getJobCounts('failed', 'active', 'wait');
      expect(counts).toEqual({ failed: 0, active: 0, wait: 0 });
      await expectInvariants(w.sql);
      await expectNoDeadlock(w);
    } finally {
      await producer.close();
    }
  });
});
