import type { Sql } from '../db/client.ts';
import { pushSettings } from '../push/settings.ts';
import type { Violation } from './reconcile.ts';

const LIMIT = 1000;

/**
 * Where every point went, batch by batch and debt by debt (reconcile, next to the totals checks):
 * - a batch holds what it was granted plus what refunds gave back, minus what was burned from it and what it
 *   paid of debts (an expired batch keeps what expired in `remaining`);
 * - an account's debt is what its open debts still owe; a debt is its charge's shortfall, and it is unpaid,
 *   paid by batches, or refunded — nothing else;
 * - no batch was burned, refilled, or made to pay debt at or after its expiry.
 */
export async function ledgerFlowViolations(sql: Sql, outboxRetentionHours = pushSettings.retentionHours): Promise<Violation[]> {
  const [batches, debts, accounts, late] = await Promise.all([batchFlow(sql), debtFlow(sql), accountDebts(sql), afterExpiry(sql)]);
  return [...batches, ...debts, ...accounts, ...late, ...(await outboxPerEntry(sql, outboxRetentionHours))];
}

async function batchFlow(sql: Sql): Promise<Violation[]> {
  const rows = await sql<{ batch_id: bigint; expected: bigint; actual: bigint }[]>`
    WITH moved AS (
      SELECT al.batch_id,
        coalesce(sum(al.amount) FILTER (WHERE e.kind = 'refund'), 0) AS back,
        coalesce(sum(al.amount) FILTER (WHERE e.kind <> 'refund'), 0) AS burned
      FROM ledger_allocations al JOIN ledger_entries e USING (entry_id) GROUP BY al.batch_id),
    paid AS (SELECT batch_id, sum(amount) AS paid FROM debt_payments GROUP BY batch_id)
    SELECT b.batch_id, b.amount + coalesce(m.back, 0) AS expected, b.remaining + coalesce(m.burned, 0) + coalesce(p.paid, 0) AS actual
    FROM batches b LEFT JOIN moved m USING (batch_id) LEFT JOIN paid p USING (batch_id)
    WHERE b.amount + coalesce(m.back, 0) <> b.remaining + coalesce(m.burned, 0) + coalesce(p.paid, 0)
    LIMIT ${LIMIT}`;
  return rows.map((r) => ({ check: 'batch_amount_accounted', batch_id: String(r.batch_id), expected: String(r.expected), actual: String(r.actual) }));
}

async function debtFlow(sql: Sql): Promise<Violation[]> {
  const rows = await sql<{ entry_id: bigint; check: string; expected: bigint; actual: bigint }[]>`
    WITH paid AS (SELECT charge_entry_id, sum(amount) AS paid FROM debt_payments GROUP BY charge_entry_id),
    burned AS (
      SELECT d.charge_entry_id, coalesce(sum(al.amount), 0) AS burned
      FROM debts d LEFT JOIN ledger_allocations al ON al.entry_id = d.charge_entry_id GROUP BY d.charge_entry_id)
    SELECT d.charge_entry_id AS entry_id, f.name AS check, f.expected, f.actual
    FROM debts d JOIN ledger_entries e ON e.entry_id = d.charge_entry_id
      JOIN burned b USING (charge_entry_id) LEFT JOIN paid p USING (charge_entry_id),
    LATERAL (VALUES
      ('debt_is_charge_shortfall', -e.amount - b.burned, d.amount),
      ('debt_accounted', d.amount, d.remaining + d.refunded + coalesce(p.paid, 0))) AS f(name, expected, actual)
    WHERE f.expected <> f.actual
    LIMIT ${LIMIT}`;
  return rows.map((r) => ({ check: r.check, entry_id: String(r.entry_id), expected: String(r.expected), actual: String(r.actual) }));
}

async function accountDebts(sql: Sql): Promise<Violation[]> {
  const rows = await sql<{ account_id: bigint; user_id: string; asset: string; expected: bigint; actual: bigint }[]>`
    SELECT a.account_id, a.user_id, a.asset, coalesce(d.owed, 0) AS expected, a.debt AS actual
    FROM accounts a LEFT JOIN (SELECT account_id, sum(remaining) AS owed FROM debts GROUP BY account_id) d USING (account_id)
    WHERE a.debt <> coalesce(d.owed, 0)
    LIMIT ${LIMIT}`;
  return rows.map((r) => ({ check: 'debt_equals_open_debts', account_id: String(r.account_id), user_id: r.user_id, asset: r.asset, expected: String(r.expected), actual: String(r.actual) }));
}

async function afterExpiry(sql: Sql): Promise<Violation[]> {
  const rows = await sql<{ entry_id: bigint; batch_id: bigint; expires_at: Date; created_at: Date }[]>`
    SELECT x.entry_id, x.batch_id, b.expires_at, e.created_at
    FROM (SELECT entry_id, batch_id FROM ledger_allocations UNION ALL SELECT entry_id, batch_id FROM debt_payments) x
      JOIN batches b USING (batch_id) JOIN ledger_entries e USING (entry_id)
    WHERE b.expires_at IS NOT NULL AND e.created_at >= b.expires_at
    LIMIT ${LIMIT}`;
  return rows.map((r) => ({
    check: 'no_batch_used_after_expiry',
    entry_id: String(r.entry_id),
    batch_id: String(r.batch_id),
    expected: `before ${r.expires_at.toISOString()}`,
    actual: r.created_at.toISOString(),
  }));
}

/**
 * Every entry announced its balance: exactly one balance_changed outbox row names it. Relayed rows are pruned
 * after the outbox retention (TALLY_OUTBOX_RETENTION_HOURS), so only entries younger than that (less an hour of
 * slack) can be checked. One aggregate over both sets, keyed by the transaction id, not a join: joined on
 * `data->>'transaction_id'` the planner, misled by stale statistics, chose a nested loop (60,000 entries ×
 * 60,000 outbox rows ran for minutes).
 */
async function outboxPerEntry(sql: Sql, retentionHours: number): Promise<Violation[]> {
  const hours = Math.max(0, retentionHours - 1);
  const rows = await sql<{ entry_id: string; user_id: string; rows: number }[]>`
    SELECT id AS entry_id, max(user_id) AS user_id, (count(*) FILTER (WHERE announced))::int AS rows
    FROM (
      SELECT entry_id::text AS id, user_id, false AS announced FROM ledger_entries
      WHERE created_at > tally_now() - make_interval(hours => ${hours})
      UNION ALL
      SELECT data->>'transaction_id', NULL, true FROM outbox WHERE type = 'balance_changed'
    ) x
    GROUP BY id
    HAVING count(*) FILTER (WHERE NOT announced) = 1 AND count(*) FILTER (WHERE announced) <> 1
    LIMIT ${LIMIT}`;
  return rows.map((r) => ({ check: 'one_outbox_row_per_entry', entry_id: r.entry_id, user_id: r.user_id, expected: '1', actual: String(r.rows) }));
}
