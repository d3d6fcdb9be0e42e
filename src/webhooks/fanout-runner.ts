import type { AppContext } from '../context.ts';
import { onFeedSequenced } from '../push/feed.ts';
import { feedChannel } from '../push/message.ts';
import { registerFeedConsumer } from '../push/sql/feed-cursors.ts';
import { createRedis } from '../redis.ts';
import { FANOUT_CONSUMER, fanOutPage, fanoutBehind, type FanoutDeps } from './fanout.ts';

/** How often each worker process looks for feed rows it was not told about (hints are not guaranteed). */
export const FANOUT_POLL_MS = 1000;

/**
 * Worker role: runs the webhook fan-out (fanout.ts) in this process whenever there may be something to do —
 * the relay's in-process hint, the feed channel's hint from relays in other processes, and a poll. Every worker
 * process runs one; the advisory lock lets one of them at a time do a page, the others return at once. Drains
 * never overlap within a process: a hint during a drain asks for one more pass after it.
 */
export async function startFanout(ctx: AppContext, pollMs = FANOUT_POLL_MS): Promise<{ close(): Promise<void> }> {
  const log = ctx.log.child({ role: 'worker', component: 'webhook-fanout' });
  await registerFeedConsumer(ctx.sql, FANOUT_CONSUMER); // idempotent; pruning waits for this cursor from now on
  const deps: FanoutDeps = { sql: ctx.sql, configs: ctx.configs, delivery: ctx };
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;
  let failing = false;

  const drain = async (): Promise<void> => {
    if (ctx.redis.status !== 'ready') return; // deliveries could not be enqueued; the poll tries again
    if ((await fanoutBehind(ctx.sql)) <= 0n) return; // the common idle poll: one round trip, no transaction
    while (!closed && (await fanOutPage(deps)) === 'more') {
      // a full page went out: there may be more
    }
  };
  const kick = (): void => {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await drain();
          if (failing) log.info('webhook fan-out recovered');
          failing = false;
        } catch (err) {
          // Nothing is lost: the cursor did not move; the next hint or poll tries the page again.
          if (!failing) log.warn({ err: { message: (err as Error).message } }, 'webhook fan-out failed; retrying');
          failing = true;
        }
      } while (again && !closed);
    })().finally(() => (running = undefined));
  };

  const stopHint = onFeedSequenced(kick);
  const sub = createRedis(ctx.env.REDIS_URL);
  sub.on('error', (err) => log.debug({ err: { message: err.message } }, 'fan-out hint subscription error'));
  sub.on('message', kick);
  sub.subscribe(feedChannel(ctx.env.TALLY_PREFIX)).catch(() => {}); // hints only: the poll covers their absence
  const timer = setInterval(kick, pollMs);
  timer.unref();
  kick();
  return {
    async close() {
      closed = true;
      clearInterval(timer);
      stopHint();
      await running;
      await sub.quit().catch(() => sub.disconnect());
    },
  };
}
