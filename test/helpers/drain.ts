import { expect } from 'vitest';
import type { Sql } from '../../src/db/client.ts';
import { runReconcile } from '../../src/maintenance/reconcile.ts';
import type { TallyProducer } from '../../src/producers/index.ts';
import { waitFor } from './tally.ts';

/**
 * A drain for fault tests: `users` users granted 10,000 points each, then `charges` post-paid charges of 1–5 points
 * spread over them, enqueued as raw jobs (as any producer would). Everything a test needs to check the outcome
 * exactly: which events, how much each user must end with.
 */
export interface Drain {
  prefix: string;
  eventIds: string[];
  expectedBalances: Map<string, number>;
}

const GRANT = 10_000;

export async function enqueueDrain(producer: TallyProducer, prefix: string, users: number, charges: number): Promise<Drain> {
  const expectedBalances = new Map<string, number>();
  const grants = Array.from({ length: users }, (_, u) => {
    const user = `${prefix}-u${u}`;
    expectedBalances.set(user, GRANT);
    return { type: 'grant', event_id: `${prefix}-g${u}`, user_id: user, asset: 'points', amount: GRANT, source: 'gift', expires_at: null };
  });
  const chargeJobs = Array.from({ length: charges }, (_, i) => {
    const user = `${prefix}-u${i % users}`;
    const amount = 1 + (i % 5);
    expectedBalances.set(user, expectedBalances.get(user)! - amount);
    return { type: 'charge', event_id: `${prefix}-c${i}`, user_id: user, asset: 'points', source_type: 'script', source_id: `s${i}`, amount, policy: 'postpaid' };
  });
  await producer.queue('grants').addBulk(grants.map((d) => ({ name: d.type, data: d, opts: { jobId: d.event_id } })));
  for (let i = 0; i < chargeJobs.length; i += 500) {
    await producer.queue('charges').addBulk(chargeJobs.slice(i, i + 500).map((d) => ({ name: d.type, data: d, opts: { jobId: d.event_id } })));
  }
  return { prefix, eventIds: [...grants, ...chargeJobs].map((d) => d.event_id), expectedBalances };
}

/** How many of the drain's events are decided (committed) in PostgreSQL. */
export async function decided(sql: Sql, drain: Drain): Promise<number> {
  const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM processed_events WHERE event_id LIKE ${`${drain.prefix}-%`}`;
  return row!.n;
}

/** Waits until at least `count` events of the drain are decided; returns how many were when it looked. */
export async function untilDecided(sql: Sql, drain: Drain, count: number, timeoutMs = 120_000): Promise<number> {
  return waitFor(`${count} events decided`, async () => {
    const n = await decided(sql, drain).catch(() => 0);
    return n >= count ? n : undefined;
  }, timeoutMs, 20);
}

/**
 * What every fault test asserts at the end: every job completed (none failed, none left anywhere), every event's
 * effect exactly once, each balance exactly what its events say, and reconcile clean.
 */
export async function expectDrainedExactlyOnce(sql: Sql, producer: TallyProducer, drain: Drain, timeoutMs = 120_000): Promise<void> {
  const total = drain.eventIds.length;
  const counts = await waitFor('every job completed', async () => {
    const [charges, grants] = await Promise.all(
      ['charges', 'grants'].map((q) => producer.queue(q).getJobCounts('completed', 'failed', 'waiting', 'active', 'delayed', 'prioritized', 'paused' as never)),
    );
    const sum = (k: string) => (charges![k] ?? 0) + (grants![k] ?? 0);
    return sum('completed') === total ? { failed: sum('failed'), left: sum('waiting') + sum('active') + sum('delayed') + sum('prioritized') + sum('paused') } : undefined;
  }, timeoutMs, 250);
  expect(counts).toEqual({ failed: 0, left: 0 });
  const [once] = await sql<{ decided: number; entries: number; twice: number }[]>`
    SELECT (SELECT count(*)::int FROM processed_events WHERE event_id LIKE ${`${drain.prefix}-%`}) AS decided,
           (SELECT count(*)::int FROM ledger_entries WHERE event_id LIKE ${`${drain.prefix}-%`}) AS entries,
           (SELECT count(*)::int FROM (SELECT event_id FROM ledger_entries WHERE event_id LIKE ${`${drain.prefix}-%`}
              GROUP BY event_id HAVING count(*) > 1) d) AS twice`;
  expect(once).toEqual({ decided: total, entries: total, twice: 0 });
  const balances = await sql<{ user_id: string; balance: bigint }[]>`
    SELECT user_id, balance FROM accounts WHERE user_id LIKE ${`${drain.prefix}-%`} AND asset = 'points'`;
  expect(new Map(balances.map((b) => [b.user_id, Number(b.balance)]))).toEqual(drain.expectedBalances);
  const summary = await runReconcile(sql);
  expect(summary.violations).toEqual([]);
}
