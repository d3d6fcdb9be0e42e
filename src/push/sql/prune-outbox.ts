import type { Sql } from '../../db/client.ts';

const NO_BOUND = 9_223_372_036_854_775_807n;

/**
 * Deletes published rows older than the retention period, oldest seq first, never past a registered feed
 * consumer's position (outbox_cursors), in chunks so no transaction holds locks for long. Each chunk moves the
 * `pruned` mark in the transaction that deletes, so a resume reading both in one snapshot knows whether its
 * replay is complete. Only a prefix of the feed is ever deleted: a row younger than the retention stops the
 * chunk even if later rows are older (relayed_at follows seq, but a clock step must not punch holes).
 */
export async function pruneOutbox(sql: Sql, retentionHours: number, chunk = 10_000): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await sql.begin(async (tx) => {
      await tx`SELECT seq FROM outbox_feed WHERE mark = 'pruned' FOR UPDATE`; // one pruner at a time
      const [r] = await tx<{ upto: bigint | null }[]>`
        WITH bound AS (
          SELECT least(
            (SELECT seq FROM outbox_feed WHERE mark = 'published'),
            coalesce((SELECT min(position) FROM outbox_cursors), ${NO_BOUND}::bigint)) AS b
        ), next AS (
          SELECT seq, relayed_at FROM outbox
          WHERE seq IS NOT NULL AND seq <= (SELECT b FROM bound) ORDER BY seq LIMIT ${chunk}
        ), young AS (
          SELECT min(seq) AS s FROM next
          WHERE relayed_at IS NULL OR relayed_at >= now() - ${String(retentionHours)}::float8 * interval '1 hour'
        )
        SELECT max(seq) AS upto FROM next WHERE seq < coalesce((SELECT s FROM young), ${NO_BOUND}::bigint)`;
      if (r?.upto == null) return 0;
      const res = await tx`DELETE FROM outbox WHERE seq <= ${r.upto}`;
      await tx`UPDATE outbox_feed SET seq = greatest(seq, ${r.upto}) WHERE mark = 'pruned'`;
      return res.count;
    });
    total += deleted;
    if (deleted < chunk) return total;
  }
}

/** Registered consumers whose position is behind the head: the ones that hold pruning back, and by how much. */
export async function laggingConsumers(sql: Sql): Promise<{ consumer: string; position: string; behind: number }[]> {
  const rows = await sql<{ consumer: string; position: bigint; behind: bigint }[]>`
    SELECT c.consumer, c.position, f.seq - c.position AS behind
    FROM outbox_cursors c, outbox_feed f
    WHERE f.mark = 'sequenced' AND c.position < f.seq
    ORDER BY c.position`;
  return rows.map((r) => ({ consumer: r.consumer, position: String(r.position), behind: Number(r.behind) }));
}

/** Rows still waiting to be published, and the age of the oldest (the sweep keeps this near zero). */
export async function unrelayedBacklog(sql: Sql): Promise<{ rows: number; oldestSeconds: number | null }> {
  const [r] = await sql<{ rows: bigint; oldest: number | null }[]>`
    SELECT count(*) AS rows, extract(epoch FROM now() - min(created_at))::float8 AS oldest
    FROM outbox WHERE relayed_at IS NULL`;
  return { rows: Number(r!.rows), oldestSeconds: r!.oldest };
}
