import type { Worker } from 'bullmq';
import type { Batcher } from './batcher.ts';

/** How long a closing worker lets in-flight jobs finish normally; well under the 30 s after which a signalled process exits anyway. */
export const SHUTDOWN_GRACE_MS = 10_000;

/**
 * The one shutdown path of a group-committing worker: stop fetching, let in-flight jobs finish through the
 * batcher for a grace period (ended early while the batcher backs off from an unreachable database — waiting
 * is pointless then), then close the batcher, so runs stuck retrying end in ShutdownError and their jobs go back
 * to the delayed set (settle → moveToDelayed) instead of being left active to stall.
 */
export async function closeWithGrace<I, O>(workers: Worker[], batcher: Batcher<I, O>, graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
  const stopped = Promise.all(workers.map((w) => w.close()));
  let timer: NodeJS.Timeout | undefined;
  let poll: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((r) => {
    timer = setTimeout(r, graceMs);
    poll = setInterval(() => batcher.retrying && r(), 250);
  });
  await Promise.race([stopped, grace]);
  clearTimeout(timer);
  clearInterval(poll);
  await batcher.close();
  await stopped;
}
