import { messageId, toMessage } from './message.ts';
import { CLOSE, type PushSession } from './session.ts';
import type { UserFeedPage } from './sql/read-user-feed.ts';

export type ReadUserFeed = (userId: string, afterSeq: bigint, limit: number) => Promise<UserFeedPage>;
export type ResumeResult = 'replayed' | 'resync' | 'gone';

/** At most `max` feed reads at once per process: a reconnect storm queues here instead of draining the DB pool. */
export class Limiter {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly max: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) await new Promise<void>((r) => this.waiting.push(r));
    else this.running++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else this.running--;
    }
  }
}

/**
 * Resume (CONTRACT §5 v2): replays the user's feed after `since`, page by page, then lets the session go live.
 * The session was subscribed to the user's channel before this starts, and a message is published only after
 * its seq committed: whatever was published before the subscription is in the feed when the first page is read,
 * whatever after it arrives live and is held meanwhile; the session's seq filter removes the overlap.
 *
 * `since` null (not an id this server gives out), above the head (forged, or from another deployment) or below
 * the pruned mark (older than the retention): the first message is `resync` and the socket goes live at once.
 */
export async function resume(session: PushSession, since: bigint | null, read: ReadUserFeed, limiter: Limiter, pageSize: number): Promise<ResumeResult> {
  let page = await limiter.run(() => read(session.userId, since ?? 0n, pageSize));
  if (since === null || since > page.head || since < page.pruned) {
    const reason = since !== null && since < page.pruned ? 'since_pruned' : 'unknown_since';
    // `id` is the head: a client that keeps the last id it saw can resume from here after re-reading state.
    session.sendControl({ id: messageId(page.head), type: 'resync', ts: new Date().toISOString(), data: { reason } });
    session.goLive();
    return 'resync';
  }
  session.lastSeq = since;
  for (;;) {
    for (const row of page.rows) {
      if (!session.write(row.seq, JSON.stringify(toMessage(row)))) return 'gone';
    }
    if (page.rows.length < pageSize && session.finishReplay()) return 'replayed';
    await drained(session);
    if (!session.open) return 'gone';
    page = await limiter.run(() => read(session.userId, session.lastSeq, pageSize));
    if (page.pruned > session.lastSeq) {
      // Rows this replay had not reached yet were pruned under it (a replay older than the retention window).
      session.close(CLOSE.subscriptionLost, 'resume fell behind the retention; reconnect with since');
      return 'gone';
    }
  }
}

/** Waits until the socket's send buffer is below half the bound, so a replay never outruns its reader. */
async function drained(session: PushSession): Promise<void> {
  while (session.open && session.ws.bufferedAmount > session.maxBuffered() / 2) {
    await new Promise((r) => setTimeout(r, 10));
  }
}
