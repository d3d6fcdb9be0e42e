import type { Tx } from '../../db/client.ts';
import type { FlowDelta } from '../../money-flow/deltas.ts';

/**
 * Appends the transaction's money-flow deltas (one row per asset it touched). Append-only into a table without
 * indexes: no row another transaction could hold, so no transaction ever waits on another here; the `money-flow`
 * maintenance task folds the rows into the per-asset totals (src/money-flow/rollup.ts).
 */
export async function insertFlowDeltas(tx: Tx, rows: FlowDelta[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    INSERT INTO money_flow_deltas (asset, granted, consumed, refunded, expired, balance, debt)
    SELECT asset, granted, consumed, refunded, expired, balance, debt
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
      AS r(asset text, granted bigint, consumed bigint, refunded bigint, expired bigint, balance bigint, debt bigint)`;
}
