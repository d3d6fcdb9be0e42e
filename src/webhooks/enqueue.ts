import type { JobsOptions, Queue } from 'bullmq';
import type { WebhookConfig } from '../config/alerts-webhooks.ts';
import type { ConfigCache } from '../config/store.ts';
import type { Db } from '../db/client.ts';
import { planDeliveries, WEBHOOKS_QUEUE, type DeliveryJob, type WebhookEvent } from './delivery.ts';

/** Options of every delivery job. Retries are bounded by time (the worker's window), not by this count. */
export const DELIVERY_JOB_OPTIONS: JobsOptions = {
  attempts: 1_000_000,
  backoff: { type: 'webhook' }, // the worker's backoffStrategy (retryDelayMs)
  // Kept a week after success: the job id dedupes a second fan-out of the same event for that long.
  removeOnComplete: { age: 7 * 24 * 3600, count: 100_000 },
  removeOnFail: false, // dead deliveries stay, inspectable in Bull Board and replayable
};

export interface DeliveryContext {
  producer: { queue(name: string): Queue };
  configs: ConfigCache;
  sql: Db;
}

/**
 * Enqueues one delivery per (event, webhook listing its type) on the `webhooks` queue — what the outbox fan-out
 * calls with the events it relays. Idempotent while the jobs are kept: the job id is the delivery id. Uses the
 * config in force unless `webhooks` is given.
 */
export async function enqueueDeliveries(ctx: DeliveryContext, events: readonly WebhookEvent[], webhooks?: readonly WebhookConfig[]): Promise<{ deliveries: number }> {
  const hooks = webhooks ?? (await ctx.configs.get(ctx.sql)).doc.webhooks;
  const jobs = planDeliveries(hooks, events);
  const queue = ctx.producer.queue(WEBHOOKS_QUEUE);
  for (let i = 0; i < jobs.length; i += 500) {
    await queue.addBulk(jobs.slice(i, i + 500).map((d: DeliveryJob) => ({ name: d.event.type, data: d, opts: { ...DELIVERY_JOB_OPTIONS, jobId: d.delivery_id } })));
  }
  return { deliveries: jobs.length };
}
