import type { Db } from '../../db/client.ts';

export interface ExpiringRule {
  asset: string;
  within_days: number;
  min_amount: number;
}

/**
 * Writes one `expiring_soon` alert (an outbox row) for up to `limit` batches that qualify and never alerted: open,
 * expiring after now and within a rule's `within_days`, still holding at least its `min_amount`. Marking and
 * alerting are one statement, so the mark commits exactly with the alert; concurrent sweeps collide on the
 * mark's primary key (ON CONFLICT DO NOTHING waits for the other and skips), so a batch alerts once, ever.
 * A batch several rules match alerts once, for the shortest window that matches. Returns how many qualified
 * (to page on) and the assets of the alerts written (to count).
 */
export async function alertExpiringBatches(db: Db, rules: ExpiringRule[], limit: number): Promise<{ due: number; assets: string[] }> {
  const [row] = await db<{ due: number; assets: string[] }[]>`
    WITH rules AS (
      SELECT asset, within_days, min_amount
      FROM jsonb_to_recordset(${db.json(rules as never)}::jsonb) AS r(asset text, within_days int, min_amount bigint)
    ), due AS (
      SELECT DISTINCT ON (b.batch_id) b.batch_id, a.user_id, a.asset, b.remaining, b.expires_at, r.within_days
      FROM rules r
      JOIN batches b ON b.open AND b.expires_at > tally_now() AND b.expires_at <= tally_now() + make_interval(days => r.within_days)
        AND b.remaining >= r.min_amount
      JOIN accounts a ON a.account_id = b.account_id AND a.asset = r.asset
      WHERE NOT EXISTS (SELECT 1 FROM expiring_alerts e WHERE e.batch_id = b.batch_id)
      ORDER BY b.batch_id, r.within_days
      LIMIT ${limit}
    ), marked AS (
      INSERT INTO expiring_alerts (batch_id, expires_at, alerted_at)
      SELECT batch_id, expires_at, tally_now() FROM due ORDER BY batch_id
      ON CONFLICT (batch_id) DO NOTHING
      RETURNING batch_id
    ), pushed AS (
      INSERT INTO outbox (user_id, type, data)
      SELECT d.user_id, 'alert', jsonb_build_object(
        'kind', 'expiring_soon', 'asset', d.asset, 'batch_id', d.batch_id::text, 'amount', d.remaining,
        'expires_at', to_char(d.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'within_days', d.within_days)
      FROM due d JOIN marked m USING (batch_id)
      ORDER BY d.user_id, d.expires_at, d.batch_id
      RETURNING data->>'asset' AS asset
    )
    SELECT (SELECT count(*) FROM due)::int AS due, coalesce((SELECT array_agg(asset) FROM pushed), '{}') AS assets`;
  return row!;
}

/** Marks of batches past their expiry by a day can never matter again (a batch must expire in the future to alert). */
export async function forgetExpiredMarks(db: Db): Promise<number> {
  const res = await db`DELETE FROM expiring_alerts WHERE expires_at < tally_now() - interval '1 day'`;
  return res.count;
}
