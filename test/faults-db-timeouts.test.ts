import '../src/money/register.ts';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnv } from '../src/config/env.ts';
import { errorCode, isTransient } from '../src/errors.ts';
import { PG_BASE, createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

/**
 * Issue 10 item 4 (database part): every tally connection runs with statement_timeout, lock_timeout and
 * idle_in_transaction_session_timeout, so a row someone else keeps locked cannot tie up the pool.
 */
let world: TestWorld;
let tally: InProcessTally;
let psql: postgres.Sql;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world);
  psql = postgres(`${PG_BASE}/${world.dbName}`, { max: 2, onnotice: () => {} });
});
afterAll(async () => {
  await psql?.end({ timeout: 5 });
  await tally?.stop();
  await world?.drop();
});

/** A transaction in another session (an operator's psql) holding `user`'s credits account row until released. */
async function lockAccount(user: string): Promise<() => Promise<void>> {
  const session = await psql.reserve();
  await session`BEGIN`;
  const rows = await session`SELECT 1 FROM accounts WHERE user_id = ${user} AND asset = 'credits' FOR UPDATE`;
  expect(rows).toHaveLength(1);
  return async () => {
    await session`ROLLBACK`;
    session.release();
  };
}

describe('database timeouts', () => {
  it('defaults: 60 s statements, 2 s lock waits, 60 s idle in a transaction; each configurable', () => {
    const env = parseEnv({});
    expect([env.TALLY_DB_STATEMENT_TIMEOUT_MS, env.TALLY_DB_LOCK_TIMEOUT_MS, env.TALLY_DB_IDLE_TX_TIMEOUT_MS]).toEqual([60_000, 2_000, 60_000]);
    expect(() => parseEnv({ TALLY_DB_LOCK_TIMEOUT_MS: '-1' })).toThrow(/TALLY_DB_LOCK_TIMEOUT_MS/);
  });

  it('every connection of a tally process has them, also after its connections were cut', async () => {
    const t = await startTally(world, ['api'], { TALLY_DB_STATEMENT_TIMEOUT_MS: '1500', TALLY_DB_LOCK_TIMEOUT_MS: '700', TALLY_DB_IDLE_TX_TIMEOUT_MS: '1000' });
    try {
      const sql = t.started.ctx.sql;
      const show = async () => {
        const rows = await Promise.all([sql`SHOW statement_timeout`, sql`SHOW lock_timeout`, sql`SHOW idle_in_transaction_session_timeout`]);
        return rows.map((r) => Object.values(r[0]!)[0]);
      };
      expect(await show()).toEqual(['1500ms', '700ms', '1s']);
      await psql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${world.dbName} AND pid <> pg_backend_pid() AND application_name = 'tally'`;
      const again = await waitFor('a reconnected pool', async () => show().catch(() => undefined), 10_000, 100);
      expect(again).toEqual(['1500ms', '700ms', '1s']);
      // A statement past its timeout fails, as a transient fault.
      const slow = await sql`SELECT pg_sleep(3)`.catch((e: unknown) => e);
      expect(errorCode(slow)).toBe('57014');
      expect(isTransient(slow)).toBe(true);
      // A transaction left idle loses its session, and with it its locks.
      await world.sql`INSERT INTO accounts (user_id, asset) VALUES ('idle-tx', 'credits') ON CONFLICT DO NOTHING`;
      const stuck = sql.begin(async (tx) => {
        await tx`SELECT 1 FROM accounts WHERE user_id = 'idle-tx' FOR UPDATE`;
        await new Promise((r) => setTimeout(r, 4_000)); // a hung process
        await tx`SELECT 1`;
      }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      await psql.begin(async (tx) => tx`SELECT 1 FROM accounts WHERE user_id = 'idle-tx' FOR UPDATE`);
      expect(Date.now() - t0).toBeLessThan(3_500);
      expect(isTransient(await stuck)).toBe(true);
    } finally {
      await t.stop();
    }
  });

  it('a row locked in another session does not hold up an unrelated balance read', async () => {
    await tally.producer.grant({ event_id: 'g-locked', user_id: 'locked', asset: 'credits', amount: 100, source: 'gift' }, { wait: true });
    await tally.producer.grant({ event_id: 'g-other', user_id: 'other', asset: 'credits', amount: 100, source: 'gift' }, { wait: true });
    const release = await lockAccount('locked');
    let released: Promise<void> | undefined;
    const timer = setTimeout(() => (released = release()), 12_000); // the operator's transaction lasts 12 s
    try {
      // More waiters on the locked row than the pool has connections (TALLY_DB_POOL = 10).
      const holds = Array.from({ length: 15 }, (_, i) =>
        tally.http('POST', '/v1/holds', { event_id: `h-${i}`, user_id: 'locked', asset: 'credits', source_type: 'llm', amount: 1, ttl_seconds: 60 }),
      );
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      const read = await tally.http('GET', '/v1/users/other/balances/credits');
      const took = Date.now() - t0;
      expect(read).toMatchObject({ status: 200, body: { balance: 100 } });
      // Without a lock timeout the read waited for the lock's release (12 s): now for one lock timeout at most.
      expect(took).toBeLessThan(6_000);
      const answered = await Promise.all(holds);
      expect(answered.every((h) => h.status !== 201)).toBe(true); // none got the lock while it was held
      // A lock wait that outlasts the route's retries is a passing fault: 503 with Retry-After, never a 500.
      for (const h of answered) {
        expect(h.status).toBe(503);
        expect(h.body.error.code).toBe('unavailable');
        expect(h.headers['retry-after']).toBe('1');
      }
    } finally {
      clearTimeout(timer);
      await (released ?? release());
    }
  }, 60_000);

  it('a worker transaction waiting on a lock times out as a transient fault, is retried, and applies once after', async () => {
    const release = await lockAccount('locked');
    const job = await tally.producer.queue('charges').add(
      'charge',
      { type: 'charge', event_id: 'c-locked', user_id: 'locked', asset: 'credits', source_type: 'llm', source_id: 's', amount: 7, policy: 'postpaid' },
      { jobId: 'c-locked', attempts: 1 },
    );
    try {
      // While the row stays locked, no tally statement waits on it much past the lock timeout (2 s).
      for (let i = 0; i < 12; i++) {
        await new Promise((r) => setTimeout(r, 500));
        const [long] = await psql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = ${world.dbName} AND application_name = 'tally' AND wait_event_type = 'Lock'
            AND now() - query_start > interval '3.5 seconds'`;
        expect(long!.n, `sample ${i}`).toBe(0);
      }
      expect(await job.getState()).not.toMatch(/failed|completed/);
    } finally {
      await release();
    }
    const result = (await tally.producer.result('charges', job, 30_000)) as { outcome: string; amount: number };
    expect(result).toMatchObject({ outcome: 'applied', amount: 7 });
    const done = (await tally.producer.queue('charges').getJob('c-locked'))!;
    expect(done.attemptsMade).toBeLessThanOrEqual(1); // transient faults never consume attempts
    const [row] = await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM ledger_entries WHERE event_id = 'c-locked'`;
    expect(row!.n).toBe(1);
    await expectInvariants(world.sql);
  }, 60_000);
});
