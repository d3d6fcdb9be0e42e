import type { Job, Queue } from 'bullmq';
import type { DeliveryJob } from './delivery.ts';

export interface DeadDelivery {
  delivery_id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  attempts: number;
  failed_reason: string;
  created_at: string;
  failed_at: string | null;
}

function describe(job: Job<DeliveryJob>): DeadDelivery {
  return {
    delivery_id: job.data.delivery_id,
    webhook_id: job.data.webhook_id,
    event_id: job.data.event.id,
    event_type: job.data.event.type,
    attempts: job.attemptsMade,
    failed_reason: job.failedReason ?? '',
    created_at: new Date(job.timestamp).toISOString(),
    failed_at: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
  };
}

const PAGE = 500;

/** Dead deliveries (the `webhooks` queue's failed set), newest first, optionally of one webhook. No payloads. */
export async function listDeadDeliveries(queue: Queue, opts: { webhookId?: string; limit?: number } = {}): Promise<{ total: number; items: DeadDelivery[] }> {
  const limit = opts.limit ?? 100;
  const items: DeadDelivery[] = [];
  const total = await queue.getFailedCount();
  for (let start = 0; start < total && items.length < limit; start += PAGE) {
    const jobs = (await queue.getFailed(start, start + PAGE - 1)) as Job<DeliveryJob>[];
    for (const job of jobs) {
      if (!job?.data?.delivery_id) continue;
      if (opts.webhookId && job.data.webhook_id !== opts.webhookId) continue;
      items.push(describe(job));
      if (items.length >= limit) break;
    }
  }
  return { total, items };
}

/**
 * Sends dead deliveries again: each goes back to waiting with its attempts reset and a fresh retry window
 * (`replayed_at`). Same delivery id, so a receiver that did get an earlier attempt dedupes it.
 */
export async function replayDeadDeliveries(queue: Queue, select: { ids?: string[]; webhookId?: string; all?: boolean }): Promise<{ replayed: string[]; not_dead: string[] }> {
  const replayed: string[] = [];
  const notDead: string[] = [];
  const replay = async (job: Job<DeliveryJob>) => {
    await job.updateData({ ...job.data, replayed_at: new Date().toISOString() });
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    replayed.push(job.data.delivery_id);
  };
  if (select.ids) {
    for (const id of select.ids) {
      const job = (await queue.getJob(id)) as Job<DeliveryJob> | undefined;
      if (job && (await job.getState()) === 'failed') await replay(job);
      else notDead.push(id);
    }
    return { replayed, not_dead: notDead };
  }
  if (!select.all && !select.webhookId) return { replayed, not_dead: notDead };
  // Collect first, then replay: each replay removes a job from the failed set and would shift the pages.
  const chosen: Job<DeliveryJob>[] = [];
  const total = await queue.getFailedCount();
  for (let start = 0; start < total; start += PAGE) {
    for (const job of (await queue.getFailed(start, start + PAGE - 1)) as Job<DeliveryJob>[]) {
      if (job?.data?.delivery_id && (!select.webhookId || job.data.webhook_id === select.webhookId)) chosen.push(job);
    }
  }
  for (const job of chosen) await replay(job);
  return { replayed, not_dead: notDead };
}
