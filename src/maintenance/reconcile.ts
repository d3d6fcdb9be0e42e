import type { Sql } from '../db/client.ts';
import { ledgerFlowViolations } from './ledger-checks.ts';

export interface Violation {
  check: string;
  account_id?: string;
  user_id?: string;
  asset?: string;
  batch_id?: string;
  entry_id?: string;
  expected?: string;
  actual?: string;
}

export interface ReconcileSummary {
  task: 'reconcile';
  ok: boolean;
  accounts_checked: number;
  violations: Violation[];
}

/** Extra checks other modules register (e.g. affinity counters vs logs). */
export type ReconcileCheck = (sql: Sql) => Promise<Violation[]>;
const extraChecks: ReconcileCheck[] = [];
export function registerReconcileCheck(check: ReconcileCheck): void {
  extraChecks.push(check);
}

const LIMIT = 1000;

/**
 * Checks every ledger invariant and names each violation by id:
 * account balance and totals = Σ of its entries; balance = Σ remaining(unexpired batches) − debt;
 * no negative remainder; every entry's before/after chain; no consume allocating more than it burned; and
 * where every point went (ledger-checks.ts): batches and debts accounted for, nothing used after its expiry,
 * one outbox row per entry.
 */
export async function runReconcile(sql: Sql, opts: { outboxRetentionHours?: number } = {}): Promise<ReconcileSummary> {
  const violations: Violation[] = [];
  const [counted] = await sql<{ n: bigint }[]>`SELECT count(*) AS n FROM accounts`;
  const n = counted?.n ?? 0n;

  const totals = await sql<{ account_id: bigint; user_id: string; asset: string; field: string; expected: bigint; actual: bigint }[]>`
    WITH e AS (
      SELECT account_id,
        coalesce(sum(amount), 0) AS balance,
        -- An operator's adjust counts as granted (positive) or consumed (negative), as its batch or burn does.
        coalesce(sum(amount) FILTER (WHERE kind = 'grant' OR (kind = 'adjust' AND amount > 0)), 0) AS granted,
        coalesce(-sum(amount) FILTER (WHERE kind IN ('consume', 'refund') OR (kind = 'adjust' AND amount < 0)), 0) AS consumed,
        coalesce(-sum(amount) FILTER (WHERE kind = 'expire'), 0) AS expired
      FROM ledger_entries GROUP BY account_id)
    SELECT a.account_id, a.user_id, a.asset, f.field, f.expected, f.actual
    FROM accounts a LEFT JOIN e ON e.account_id = a.account_id,
    LATERAL (VALUES
      ('balance', coalesce(e.balance, 0), a.balance),
      ('total_granted', coalesce(e.granted, 0), a.total_granted),
      ('total_consumed', coalesce(e.consumed, 0), a.total_consumed),
      ('total_expired', coalesce(e.expired, 0), a.total_expired)) AS f(field, expected, actual)
    WHERE f.expected <> f.actual
    LIMIT ${LIMIT}`;
  for (const r of totals) {
    violations.push({ check: `${r.field}_equals_entries`, account_id: String(r.account_id), user_id: r.user_id, asset: r.asset, expected: String(r.expected), actual: String(r.actual) });
  }

  const remainders = await sql<{ account_id: bigint; user_id: string; asset: string; expected: bigint; actual: bigint }[]>`
    SELECT a.account_id, a.user_id, a.asset, coalesce(b.open, 0) - a.debt AS expected, a.balance AS actual
    FROM accounts a LEFT JOIN (
      SELECT account_id, sum(remaining) AS open FROM batches WHERE NOT expired GROUP BY account_id) b
      ON b.account_id = a.account_id
    WHERE coalesce(b.open, 0) - a.debt <> a.balance OR (a.debt > 0 AND coalesce(b.open, 0) > 0)
    LIMIT ${LIMIT}`;
  for (const r of remainders) {
    violations.push({ check: 'balance_equals_remainders_minus_debt', account_id: String(r.account_id), user_id: r.user_id, asset: r.asset, expected: String(r.expected), actual: String(r.actual) });
  }

  const negative = await sql<{ batch_id: bigint; remaining: bigint }[]>`
    SELECT batch_id, remaining FROM batches WHERE remaining < 0 OR remaining > amount LIMIT ${LIMIT}`;
  for (const r of negative) violations.push({ check: 'remaining_within_amount', batch_id: String(r.batch_id), actual: String(r.remaining) });

  const chain = await sql<{ entry_id: bigint; account_id: bigint; expected: bigint; actual: bigint }[]>`
    SELECT entry_id, account_id, prev_after AS expected, balance_before AS actual FROM (
      SELECT entry_id, account_id, balance_before,
        coalesce(lag(balance_after) OVER (PARTITION BY account_id ORDER BY entry_id), 0) AS prev_after
      FROM ledger_entries) x
    WHERE prev_after <> balance_before LIMIT ${LIMIT}`;
  for (const r of chain) {
    violations.push({ check: 'entry_chain', entry_id: String(r.entry_id), account_id: String(r.account_id), expected: String(r.expected), actual: String(r.actual) });
  }

  const allocations = await sql<{ entry_id: bigint; expected: bigint; actual: bigint }[]>`
    SELECT e.entry_id, -e.amount AS expected, sum(al.amount) AS actual
    FROM ledger_entries e JOIN ledger_allocations al USING (entry_id)
    WHERE e.kind IN ('consume', 'adjust') GROUP BY e.entry_id, e.amount HAVING sum(al.amount) > -e.amount LIMIT ${LIMIT}`;
  for (const r of allocations) {
    violations.push({ check: 'allocations_within_consume', entry_id: String(r.entry_id), expected: `<= ${r.expected}`, actual: String(r.actual) });
  }

  violations.push(...(await ledgerFlowViolations(sql, opts.outboxRetentionHours)));
  for (const check of extraChecks) violations.push(...(await check(sql)));
  return { task: 'reconcile', ok: violations.length === 0, accounts_checked: Number(n), violations };
}
