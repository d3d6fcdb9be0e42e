import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigCache } from '../src/config/store.ts';
import { createDb, type Sql } from '../src/db/client.ts';
import { isTransient } from '../src/errors.ts';
import type { LedgerCommand } from '../src/ledger/commands.ts';
import { runLedger } from '../src/ledger/transaction.ts';
import { deadlocks } from './helpers/deadlocks.ts';
import { createWorld, PG_BASE, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { chargeCmd, grantCmd, outcomesOf } from './helpers/ledger-commands.ts';

/**
 * Races the ledger must win without help from the batcher: one event through two transactions at once, and many
 * transactions locking overlapping accounts. The interleaving is forced, not hoped for: a third session holds a row
 * both transactions need, so both get past their lookups before either can commit.
 */
let world: TestWorld;
const configs = new ConfigCache();

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
});
afterAll(async () => {
  await world?.drop();
});

/** A session that holds an uncommitted row until released (rolled back). */
async function holdRow(insert: (tx: postgres.TransactionSql) => Promise<unknown>) {
  const admin = postgres(`${PG_BASE}/${world.dbName}`, { max: 1, onnotice: () => {} });
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let ready!: () => void;
  const holding = new Promise<void>((r) => (ready = r));
  const done = admin
    .begin(async (tx) => {
      await insert(tx);
      ready();
      await released;
      throw new Error('rollback');
    })
    .catch(() => {})
    .finally(() => admin.end({ timeout: 5 }));
  await holding;
  return { release: async () => (release(), await done) };
}

/** Waits until `count` sessions of this database wait on a lock. */
async function blocked(count: number) {
  for (let i = 0; i < 400; i++) {
    const [row] = await world.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${world.dbName} AND wait_event_type = 'Lock'`;
    if (row!.n >= count) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${count} sessions never blocked`);
}

/** As the batcher would: transient faults retried, everything else surfaced. Returns outcomes and how many retries. */
async function withRetry(cmds: LedgerCommand[]) {
  for (let retries = 0; ; retries++) {
    try {
      return { outcomes: outcomesOf((await runLedger(world.sql, configs, cmds)).outcomes), retries };
    } catch (err) {
      if (!isTransient(err) || retries > 20) throw err;
    }
  }
}

describe('one event through two transactions at once', () => {
  it('for a brand-new account: applied exactly once, the other answers noop_duplicate (decisions looked up again under the new lock)', async () => {
    for (let round = 0; round < 3; round++) {
      const user = `fresh-${round}`;
      const cmd = grantCmd(`twice-${round}`, user, 10);
      // Both transactions find no account and no decision, then queue on the account's insert.
      const gate = await holdRow((tx) => tx`INSERT INTO accounts (user_id, asset) VALUES (${user}, 'points')`);
      const a = runLedger(world.sql, configs, [cmd]);
      const b = runLedger(world.sql, configs, [cmd]);
      await blocked(2);
      await gate.release();
      const results = await Promise.all([a, b]);
      expect(results.map((r) => outcomesOf(r.outcomes)[0]).sort()).toEqual(['applied', 'noop_duplicate']);
      const [row] = await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM ledger_entries WHERE event_id = ${cmd.eventId}`;
      expect(row!.n).toBe(1);
    }
    await expectInvariants(world.sql);
  });

  it('one event_id with two payloads for two accounts: one applies, the other fails idempotency_conflict — never both', async () => {
    const eventId = 'one-id-two-payloads';
    const first = grantCmd(eventId, 'payload-a', 10);
    const second = grantCmd(eventId, 'payload-b', 20);
    await runLedger(world.sql, configs, [grantCmd('pa-seed', 'payload-a', 1), grantCmd('pb-seed', 'payload-b', 1)]);
    // Both transactions lock their own account, find no decision, and queue on the decision's insert.
    const gate = await holdRow(
      (tx) => tx`INSERT INTO processed_events (queue, event_id, payload_hash, outcome, result) VALUES ('grants', ${eventId}, 'x', 'applied', '{}')`,
    );
    const a = withRetry([first]);
    const b = withRetry([second]);
    await blocked(2);
    await gate.release();
    const results = await Promise.all([a, b]);
    expect(results.map((r) => r.outcomes[0]).sort()).toEqual(['applied', 'idempotency_conflict']);
    const [row] = await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM ledger_entries WHERE event_id = ${eventId}`;
    expect(row!.n).toBe(1);
    await expectInvariants(world.sql);
  });
});

describe('transactions locking overlapping accounts', () => {
  it('never deadlock: accounts are locked in one sorted order, whatever order the commands come in', async () => {
    const users = Array.from({ length: 10 }, (_, i) => `lock-${String(i).padStart(2, '0')}`);
    await runLedger(world.sql, configs, users.map((u) => grantCmd(`seed-${u}`, u, 1000)));
    const before = await deadlocks(world.sql, world.dbName);
    const pool: Sql = createDb(`${PG_BASE}/${world.dbName}`, { max: 8 });
    let seq = 0;
    /** Retried as the batcher would: a deadlock never shows in the outcomes, only in pg_stat_database. */
    const apply = async (cmds: LedgerCommand[]) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return outcomesOf((await runLedger(pool, configs, cmds)).outcomes);
        } catch (err) {
          if (!isTransient(err) || attempt > 20) throw err;
        }
      }
    };
    try {
      for (let round = 0; round < 8; round++) {
        // A session holds one account in the middle, so two transactions stop part-way through their locks, each
        // holding what it locked before. In one sorted order that is never a cycle; locked in the order the
        // commands came in (or any other), it is one about three times in four.
        const gate = await holdRow((tx) => tx`SELECT 1 FROM accounts WHERE user_id = 'lock-05' FOR UPDATE`);
        const runs = Array.from({ length: 2 }, (_, w) => {
          const order = [...users].sort(() => Math.random() - 0.5);
          if (w === 0) order.sort().reverse();
          return apply(order.map((u) => (seq++ % 2 ? chargeCmd(`lk-${seq}`, u, 1) : grantCmd(`lk-${seq}`, u, 1))));
        });
        await blocked(2);
        await gate.release();
        for (const outcomes of await Promise.all(runs)) expect(outcomes.every((o) => o === 'applied')).toBe(true);
      }
    } finally {
      await pool.end({ timeout: 5 }); // backends report their statistics as they exit
    }
    expect((await deadlocks(world.sql, world.dbName)) - before).toBe(0);
    await expectInvariants(world.sql);
  });
});
