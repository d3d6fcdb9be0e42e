import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigCache } from '../src/config/store.ts';
import { runLedger } from '../src/ledger/transaction.ts';
import { applyHoldBatch } from '../src/money/hold-batch.ts';
import { registerFeedConsumer } from '../src/push/sql/feed-cursors.ts';
import { sequenceOutbox } from '../src/push/sql/sequence-outbox.ts';
import { FANOUT_CONSUMER, fanOutPage } from '../src/webhooks/fanout.ts';
import { createWorld, PG_BASE, type TestWorld } from './helpers/env.ts';
import { grantCmd } from './helpers/ledger-commands.ts';
import postgres from 'postgres';
import type { Sql } from '../src/db/client.ts';

/**
 * Statements pipelined on one connection run in the order they are *sent*, and postgres.js sends a query when it is
 * first awaited — a microtask later for a query awaited inside a helper than for one handed to Promise.all directly.
 * So "the read is pipelined behind the lock" holds only if the lock statement really leaves first. The webhook
 * fan-out got this backwards (its cursor was read before its advisory lock was taken: two processes enqueued one
 * page twice, CI run of 2026-11-30). Each place whose correctness rests on such an order is pinned here, on the
 * wire order (postgres.js' debug hook fires as each query is written). Not through helpers/round-trips.ts: its
 * counter touches every query as it is made, which sends it at once and would hide exactly this.
 */
let world: TestWorld;
let sent: string[] | null = null;
let pool: Sql;
const db = {
  get sql() {
    return pool;
  },
  start() {
    sent = [];
  },
  stop() {
    const statements = sent ?? [];
    sent = null;
    return { statements };
  },
};
const configs = new ConfigCache();

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  pool = postgres(`${PG_BASE}/${world.dbName}`, {
    max: 1,
    types: { bigint: postgres.BigInt },
    onnotice: () => {},
    debug: (_c: number, query: string) => sent?.push(query.replace(/\s+/g, ' ').trim()),
  }) as unknown as Sql;
});
afterAll(async () => {
  await pool?.end({ timeout: 5 });
  await world?.drop();
});

/** Index of the first statement matching `re` (it must be there). */
function at(statements: string[], re: RegExp): number {
  const i = statements.findIndex((s) => re.test(s));
  expect(i, `no statement matches ${re}:\n${statements.join('\n')}`).toBeGreaterThanOrEqual(0);
  return i;
}

describe('statements that must follow a lock are sent after it', () => {
  it('the ledger: the accounts are locked before the decisions for the events are looked up', async () => {
    for (const fresh of [false, true]) {
      const user = fresh ? 'po-new' : 'po-old';
      if (!fresh) await runLedger(world.sql, configs, [grantCmd('po-seed', user, 5)]);
      db.start();
      await runLedger(db.sql, configs, [grantCmd(`po-${user}`, user, 5)]);
      const { statements } = db.stop();
      expect(at(statements, /FOR UPDATE OF a/), `fresh account: ${fresh}`).toBeLessThan(at(statements, /FROM processed_events/));
    }
  });

  it('holds: the accounts are locked before their room and the holds to release are read', async () => {
    await runLedger(world.sql, configs, [grantCmd('po-h-seed', 'po-h', 100, { asset: 'credits' })]);
    const [first] = await applyHoldBatch(world.sql, configs, [
      { op: 'place', req: { event_id: 'po-h1', user_id: 'po-h', asset: 'credits', source_type: 'llm', amount: 10, ttl_seconds: 600 } as never },
    ]);
    const holdId = (first as { hold: { hold_id: string } }).hold.hold_id;
    db.start();
    await applyHoldBatch(db.sql, configs, [
      { op: 'release', holdId, userId: 'po-h', asset: 'credits' },
      { op: 'place', req: { event_id: 'po-h2', user_id: 'po-h', asset: 'credits', source_type: 'llm', amount: 10, ttl_seconds: 600 } as never },
    ]);
    const { statements } = db.stop();
    const lock = at(statements, /FOR UPDATE OF a/);
    expect(lock).toBeLessThan(at(statements, /AS held/));
    expect(lock).toBeLessThan(at(statements, /FROM holds WHERE hold_id = ANY/));
  });

  it('the webhook fan-out: the advisory lock is taken before the cursor is read', async () => {
    await world.applyConfig({
      assets: { points: { default_expiry_days: null } },
      webhooks: [{ id: 'hook', url: 'http://127.0.0.1:9/', secret: 'whsec-order-0123456789', events: ['alert'], allow_private_network: true }],
    });
    await registerFeedConsumer(world.sql, FANOUT_CONSUMER);
    await runLedger(world.sql, configs, [grantCmd('po-f', 'po-f', 1)]);
    await sequenceOutbox(world.sql, 1000);
    const queue = { addBulk: async () => [] };
    db.start();
    await fanOutPage({ sql: db.sql, configs: new ConfigCache(), delivery: { producer: { queue: () => queue as never }, configs: new ConfigCache(), sql: db.sql } });
    const { statements } = db.stop();
    expect(at(statements, /pg_try_advisory_xact_lock/)).toBeLessThan(at(statements, /FROM outbox_cursors/));
  });
});
