import type { Sql } from '../db/client.ts';
import type { Violation } from '../maintenance/reconcile.ts';

/** Refunds never give back more than their charge took, and a settled hold names the charge that settled it. */
export async function refundViolations(sql: Sql): Promise<Violation[]> {
  const over = await sql<{ entry_id: bigint; charged: bigint; refunded: bigint }[]>`
    SELECT e.entry_id, -e.amount AS charged, sum(r.requested) AS refunded
    FROM refunds r JOIN ledger_entries e ON e.entry_id = r.charge_entry_id
    GROUP BY e.entry_id, e.amount HAVING sum(r.requested) > -e.amount LIMIT 1000`;
  return over.map((r) => ({ check: 'refunds_within_charge', entry_id: String(r.entry_id), expected: `<= ${r.charged}`, actual: String(r.refunded) }));
}

/** The usage rollup (usage_hourly) equals what the ledger's charges and refunds add up to, hour by hour. */
export async function usageRollupViolations(sql: Sql): Promise<Violation[]> {
  const rows = await sql<{ user_id: string; asset: string; hour: Date; expected: bigint | null; actual: bigint | null }[]>`
    WITH l AS (
      SELECT user_id, asset, date_trunc('hour', occurred_at, 'UTC') AS hour, coalesce(source_type, 'unknown') AS source_type,
        coalesce(usage->>'model', '') AS model, -sum(amount) AS amount
      FROM ledger_entries WHERE kind IN ('consume', 'refund') AND occurred_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5)
    SELECT coalesce(l.user_id, u.user_id) AS user_id, coalesce(l.asset, u.asset) AS asset, coalesce(l.hour, u.hour) AS hour,
      l.amount AS expected, u.amount AS actual
    FROM l FULL JOIN usage_hourly u
      ON u.user_id = l.user_id AND u.asset = l.asset AND u.hour = l.hour AND u.source_type = l.source_type AND u.model = l.model
    WHERE l.amount IS DISTINCT FROM u.amount AND NOT (l.amount IS NULL AND u.amount = 0)
    LIMIT 1000`;
  return rows.map((r) => ({ check: 'usage_rollup_equals_ledger', user_id: r.user_id, asset: r.asset, expected: String(r.expected ?? 0), actual: `${r.actual ?? 0} at ${r.hour.toISOString()}` }));
}
