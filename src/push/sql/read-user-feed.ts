import type { Db } from '../../db/client.ts';
import type { FeedEvent } from '../message.ts';

export interface UserFeedPage {
  /** Highest seq assigned when the page was read. */
  head: bigint;
  /** Every row with seq <= pruned was gone when the page was read. */
  pruned: bigint;
  rows: FeedEvent[];
}

/**
 * One page of a user's feed after `afterSeq`, with the feed's bounds read in the same statement (one snapshot):
 * a prune that commits concurrently is either wholly seen (pruned moved, rows gone) or not at all, so a page
 * whose `pruned` is <= afterSeq is complete up to its last row.
 */
export async function readUserFeed(db: Db, userId: string, afterSeq: bigint, limit: number): Promise<UserFeedPage> {
  const rows = await db<(Omit<FeedEvent, 'seq'> & { seq: bigint | null; head: bigint; pruned: bigint })[]>`
    SELECT b.head, b.pruned, o.seq, o.user_id, o.type, o.data, o.created_at
    FROM (SELECT max(seq) FILTER (WHERE mark = 'sequenced') AS head, max(seq) FILTER (WHERE mark = 'pruned') AS pruned
          FROM outbox_feed) b
    LEFT JOIN LATERAL (
      SELECT seq, user_id, type, data, created_at FROM outbox
      WHERE user_id = ${userId} AND seq > ${afterSeq} ORDER BY seq LIMIT ${limit}
    ) o ON true
    ORDER BY o.seq`;
  const first = rows[0]!;
  return {
    head: first.head,
    pruned: first.pruned,
    rows: rows.filter((r) => r.seq !== null).map(({ seq, user_id, type, data, created_at }) => ({ seq: seq!, user_id, type, data, created_at })),
  };
}
