import type { ConfigCache } from '../config/store.ts';
import type { Sql } from '../db/client.ts';
import { messageId } from '../push/message.ts';
import type { FeedEvent } from '../push/message.ts';
import { feedBounds, readCommittedFeed } from '../push/sql/read-feed.ts';
import { advanceFeedCursor, feedCursor } from '../push/sql/feed-cursors.ts';
import type { WebhookEvent } from './delivery.ts';
import { enqueueDeliveries, type DeliveryContext } from './enqueue.ts';

/**
 * The webhook fan-out (docs/alerts-webhooks.md "Fan-out"): a consumer of the committed, ordered outbox feed
 * (docs/push.md "The feed") that turns every row whose type a configured webhook lists into deliveries on the
 * `webhooks` queue. At-least-once and restart-safe: the cursor moves only in the transaction that enqueued the
 * page, after the enqueue; a crash in between re-enqueues the page, and the delivery ids (the job ids) make that
 * a no-op. One process at a time: each page runs under a transaction-scoped advisory lock; a process that finds
 * it taken leaves the page to the holder.
 */
export const FANOUT_CONSUMER = 'webhooks';
/** pg advisory lock key ("tally" in ASCII, then 12 for the issue): one fan-out at a time per database. */
export const FANOUT_LOCK = 0x74616c6c79_0012n;
export const FANOUT_PAGE = 500;
/** A page's enqueue that has not answered by then (Redis away) rolls the page back; it is tried again later. */
const ENQUEUE_TIMEOUT_MS = 10_000;

export interface FanoutDeps {
  sql: Sql;
  configs: ConfigCache;
  delivery: DeliveryContext;
}

/** `idle`: caught up; `more`: a full page went out, call again; `busy`: another process holds the fan-out. */
export type PageResult = 'idle' | 'more' | 'busy';

/** The POST body's event: the feed's id (`ob-<seq>`, what WebSocket clients see too), type, commit time, user, data. */
export function toWebhookEvent(row: FeedEvent): WebhookEvent {
  return { id: messageId(row.seq), type: row.type, ts: row.created_at.toISOString(), user_id: row.user_id, data: row.data };
}

/** True when the feed has rows past the fan-out's cursor: two reads, one round trip, no lock. */
export async function fanoutBehind(sql: Sql): Promise<bigint> {
  const [cursor, bounds] = await Promise.all([feedCursor(sql, FANOUT_CONSUMER), feedBounds(sql)]);
  return cursor === null ? 0n : bounds.head - cursor;
}

/** Fans out one page of the feed, or nothing if another process holds the fan-out or there is nothing new. */
export async function fanOutPage(deps: FanoutDeps): Promise<PageResult> {
  return (await deps.sql.begin(async (tx) => {
    // The lock first, then (a statement that starts once it is held) the cursor, so that its snapshot sees what the
    // previous holder committed: it released the lock only after its commit. Two awaits, not a pipeline: postgres.js
    // sends a query when it is first awaited, and a Promise.all of this lock and feedCursor() sent the cursor read
    // first — a process read a stale cursor, then got the lock, and enqueued a page twice (test/pipeline-order.test.ts).
    const [lock] = await tx<{ got: boolean }[]>`SELECT pg_try_advisory_xact_lock(${FANOUT_LOCK.toString()}::bigint) AS got`;
    if (!lock!.got) return 'busy';
    const position = await feedCursor(tx, FANOUT_CONSUMER);
    if (position === null) throw new Error(`feed consumer ${FANOUT_CONSUMER} is not registered`);
    const hooks = (await deps.configs.get(tx)).doc.webhooks;
    if (hooks.length === 0) {
      // Nobody to deliver to: skip to the head without reading the rows (nor holding back pruning).
      await advanceFeedCursor(tx, FANOUT_CONSUMER, (await feedBounds(tx)).head);
      return 'idle';
    }
    const rows = await readCommittedFeed(tx, position, FANOUT_PAGE);
    if (rows.length === 0) return 'idle';
    await withTimeout(enqueueDeliveries(deps.delivery, rows.map(toWebhookEvent), hooks), ENQUEUE_TIMEOUT_MS);
    await advanceFeedCursor(tx, FANOUT_CONSUMER, rows.at(-1)!.seq);
    return rows.length === FANOUT_PAGE ? 'more' : 'idle';
  })) as PageResult;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`webhook fan-out: enqueue did not answer within ${ms} ms`)), ms);
    }),
  ]);
}
