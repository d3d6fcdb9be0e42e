import type { Sql } from '../../db/client.ts';

/** Deletes relayed rows older than the retention period, in chunks so no statement holds locks for long. */
export async function pruneOutbox(sql: Sql, retentionHours: number, chunk = 10_000): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await sql`
      DELETE FROM outbox WHERE outbox_id IN (
        SELECT outbox_id FROM outbox
        WHERE relayed_at IS NOT NULL AND relayed_at < now() - ${String(retentionHours)}::float8 * interval '1 hour'
        ORDER BY relayed_at
        LIMIT ${chunk})`;
    total += deleted.count;
    if (deleted.count < chunk) return total;
  }
}

/** Rows still waiting to be relayed, and the age of the oldest (the sweep keeps this near zero). */
export async function unrelayedBacklog(sql: Sql): Promise<{ rows: number; oldestSeconds: number | null }> {
  const [r] = await sql<{ rows: bigint; oldest: number | null }[]>`
    SELECT count(*) AS rows, extract(epoch FROM now() - min(created_at))::float8 AS oldest
    FROM outbox WHERE relayed_at IS NULL`;
  return { rows: Number(r!.rows), oldestSeconds: r!.oldest };
}
