import type { Db, Tx } from '../../db/client.ts';

export interface UsageGroupRow {
  source_type: string;
  /** '' = no model. */
  model: string;
  /** Charged net of refunds. */
  amount: bigint;
  count: bigint;
  input_tokens: bigint;
  output_tokens: bigint;
}

export const HOUR_MS = 3_600_000;

/**
 * A user's charges net of their refunds since `since` (by occurred_at; null = all time), grouped by source
 * type and model: whole hours from the rollup, and the window's partial first hour from the ledger itself
 * (the partial index ledger_entries_usage), so the answer is exact to the millisecond and its cost does not
 * grow with the user's history.
 */
export function usageGroups(db: Db, userId: string, asset: string | undefined, since: Date | null): Promise<UsageGroupRow[]> {
  const edge = since === null ? null : new Date(Math.ceil(since.getTime() / HOUR_MS) * HOUR_MS);
  return db<UsageGroupRow[]>`
    SELECT source_type, model, sum(amount)::bigint AS amount, sum(count)::bigint AS count,
      sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens
    FROM (
      SELECT source_type, model, amount, count, input_tokens, output_tokens FROM usage_hourly
      WHERE user_id = ${userId} ${edge === null ? db`` : db`AND hour >= ${edge}`}
        ${asset === undefined ? db`` : db`AND asset = ${asset}`}
      ${
        since === null
          ? db``
          : db`UNION ALL
      SELECT coalesce(source_type, 'unknown'), coalesce(usage->>'model', ''), -amount, (kind = 'consume')::int,
        CASE WHEN kind = 'consume' THEN coalesce((usage->>'input_tokens')::bigint, 0) ELSE 0 END,
        CASE WHEN kind = 'consume' THEN coalesce((usage->>'output_tokens')::bigint, 0) ELSE 0 END
      FROM ledger_entries
      WHERE user_id = ${userId} AND kind IN ('consume', 'refund') AND occurred_at >= ${since} AND occurred_at < ${edge}
        ${asset === undefined ? db`` : db`AND asset = ${asset}`}`
      }
    ) u
    GROUP BY source_type, model`;
}

export interface UsageDelta {
  user_id: string;
  asset: string;
  hour: string;
  source_type: string;
  model: string;
  amount: string;
  count: number;
  input_tokens: string;
  output_tokens: string;
}

/** Adds a transaction's charges and refunds to the hourly rollup (sorted: the same order in every transaction). */
export async function addUsage(tx: Tx, rows: UsageDelta[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    INSERT INTO usage_hourly (user_id, asset, hour, source_type, model, amount, count, input_tokens, output_tokens)
    SELECT user_id, asset, hour, source_type, model, amount, count, input_tokens, output_tokens
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb) AS r(user_id text, asset text, hour timestamptz, source_type text,
      model text, amount bigint, count bigint, input_tokens bigint, output_tokens bigint)
    ORDER BY user_id, hour, asset, source_type, model
    ON CONFLICT (user_id, hour, asset, source_type, model) DO UPDATE SET
      amount = usage_hourly.amount + excluded.amount, count = usage_hourly.count + excluded.count,
      input_tokens = usage_hourly.input_tokens + excluded.input_tokens, output_tokens = usage_hourly.output_tokens + excluded.output_tokens`;
}
