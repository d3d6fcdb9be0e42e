import type { Tx } from '../../db/client.ts';
import type { FeedEvent } from '../message.ts';

/**
 * Locks the `published` mark and returns the next sequenced rows after it, in seq order. Called in the
 * transaction that publishes them: one publisher at a time (the row lock waits, it does not skip), so messages
 * reach the fan-out channels in seq order; if publishing fails or the process dies before commit, the mark
 * rolls back and the same rows — with the same ids — are published again (at-least-once).
 */
export async function nextToPublish(tx: Tx, limit: number): Promise<{ from: bigint; rows: FeedEvent[] }> {
  const [mark] = await tx<{ seq: bigint }[]>`SELECT seq FROM outbox_feed WHERE mark = 'published' FOR UPDATE`;
  const from = mark!.seq;
  const rows = await tx<FeedEvent[]>`
    SELECT seq, user_id, type, data, created_at FROM outbox
    WHERE seq > ${from} ORDER BY seq LIMIT ${limit}`;
  return { from, rows };
}

/** Marks the rows (from, to] published: relayed_at for the outbox lag gauges, and the mark itself. */
export async function markPublished(tx: Tx, from: bigint, to: bigint): Promise<void> {
  await tx`
    WITH rows AS (UPDATE outbox SET relayed_at = clock_timestamp() WHERE seq > ${from} AND seq <= ${to})
    UPDATE outbox_feed SET seq = ${to} WHERE mark = 'published'`;
}
