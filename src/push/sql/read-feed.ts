import type { Db } from '../../db/client.ts';
import type { FeedEvent } from '../message.ts';

/**
 * The committed, ordered outbox feed for any consumer (docs/push.md "The feed"): rows with seq > `afterSeq`,
 * in seq order. Every row it returns is committed and its seq is final; every row that becomes visible later
 * has a larger seq — so a consumer that keeps the last seq it handled and asks again from there sees each row
 * exactly once and never skips one that committed late. Rows are gone once pruned: register a cursor
 * (feed-cursors.ts) so pruning waits for you.
 */
export async function readCommittedFeed(db: Db, afterSeq: bigint, limit: number): Promise<FeedEvent[]> {
  return db<FeedEvent[]>`
    SELECT seq, user_id, type, data, created_at FROM outbox
    WHERE seq > ${afterSeq} ORDER BY seq LIMIT ${limit}`;
}

export interface FeedBounds {
  /** Highest seq assigned so far. */
  head: bigint;
  /** Highest seq published to the WebSocket fan-out. */
  published: bigint;
  /** Every row with seq <= pruned is gone. */
  pruned: bigint;
}

export async function feedBounds(db: Db): Promise<FeedBounds> {
  const rows = await db<{ mark: string; seq: bigint }[]>`SELECT mark, seq FROM outbox_feed`;
  const get = (m: string) => rows.find((r) => r.mark === m)?.seq ?? 0n;
  return { head: get('sequenced'), published: get('published'), pruned: get('pruned') };
}
