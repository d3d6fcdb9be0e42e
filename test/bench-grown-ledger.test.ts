import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/modules.ts';
import { growLedger } from '../bench/grown-ledger.ts';
import { balanceAt } from '../src/ledger/history.ts';
import { readBalance, readTransactions } from '../src/ledger/read.ts';
import { runReconcile } from '../src/maintenance/reconcile.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';

let world: TestWorld;
beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
});
afterAll(async () => {
  await world?.drop();
});

describe('the grown-books ledger (bench/grown-ledger.ts)', () => {
  // 1,003 entries over 100 accounts: accounts 0–2 get 11 entries, the rest 10 (the remainder path).
  it('writes a ledger that passes every reconcile check and reads like one tally wrote', async () => {
    const grown = await growLedger(world.sql, { entries: 1003, accounts: 100 }, () => {});
    const counts = await world.sql<{ table: string; n: number }[]>`
      SELECT 'entries' AS table, count(*)::int AS n FROM ledger_entries UNION ALL
      SELECT 'accounts', count(*)::int FROM accounts UNION ALL
      SELECT 'decisions', count(*)::int FROM processed_events UNION ALL
      SELECT 'batches', count(*)::int FROM batches UNION ALL
      SELECT 'allocations', count(*)::int FROM ledger_allocations`;
    expect(Object.fromEntries(counts.map((c) => [c.table, c.n]))).toEqual({
      entries: 1003,
      accounts: 100,
      decisions: 1003 + 100, // every entry's, and every affinity event's
      batches: 3 * 3 + 97 * 2,
      allocations: 1003 - (3 * 3 + 97 * 2),
    });
    const reconcile = await runReconcile(world.sql);
    expect(reconcile.violations).toEqual([]);

    // user-7: 10 entries = grant 20, 4 × −5, grant 20 + 5·7, 4 × −5: balance 35.
    expect(await readBalance(world.sql, 'user-7', 'points')).toMatchObject({ balance: 35, total_granted: 75, total_consumed: 40 });
    // user-1: 11 entries, the third group is a lone grant of 20 + 5: balance 25.
    expect(await readBalance(world.sql, 'user-1', 'points')).toMatchObject({ balance: 25, total_granted: 65 });
    const page = await readTransactions(world.sql, 'user-7', { asset: 'points', limit: 50 });
    expect(page.items.map((t) => t.amount)).toEqual([-5, -5, -5, -5, 55, -5, -5, -5, -5, 20]);
    // Half a year back user-7 had had its first five entries at most: a balance the chain agrees with.
    const mid = await balanceAt(world.sql, 'user-7', 'points', new Date(grown.until.getTime() - 182 * 86_400_000).toISOString());
    expect([0, 5, 10, 15, 20]).toContain(Number(mid.balance));
    // The last day's entries have their outbox rows, published and sequenced in entry order.
    const [outbox] = await world.sql<{ n: number; unpublished: number }[]>`
      SELECT count(*)::int AS n, count(*) FILTER (WHERE relayed_at IS NULL)::int AS unpublished FROM outbox`;
    expect(outbox!.n).toBeGreaterThan(0);
    expect(outbox!.unpublished).toBe(0);
  });
});
