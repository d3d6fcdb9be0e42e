import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { WebhookConfig } from '../config/alerts-webhooks.ts';
import type { AppContext } from '../context.ts';
import { recordWebhookAttempt, recordWebhookDead } from '../ops/job-stats.ts';
import { WORKER_DEFAULTS } from '../workers/worker-deps.ts';
import { workerCreated } from '../workers/worker-registry.ts';
import { deliveryBody, retryDelayMs, WEBHOOKS_QUEUE, type DeliveryJob, type RetryPolicy } from './delivery.ts';
import { EndpointSlots } from './endpoint-slots.ts';
import { postOnce, type PostResult, type Resolver } from './http-post.ts';
import { SIGNATURE_HEADER, signatureHeader } from './signature.ts';

export interface WebhookWorkerOptions {
  timeoutMs: number;
  concurrency: number;
  perEndpoint: number;
  retry: RetryPolicy;
  /** Tests inject a resolver to see what a name resolving to a private address does; never needed in production. */
  resolver?: Resolver;
}

export function webhookWorkerOptions(env: AppContext['env']): WebhookWorkerOptions {
  return {
    timeoutMs: env.TALLY_WEBHOOK_TIMEOUT_MS,
    concurrency: env.TALLY_WEBHOOK_CONCURRENCY,
    perEndpoint: env.TALLY_WEBHOOK_PER_ENDPOINT,
    retry: { baseMs: env.TALLY_WEBHOOK_BACKOFF_MS, maxMs: env.TALLY_WEBHOOK_BACKOFF_MAX_MS, windowMs: env.TALLY_WEBHOOK_RETRY_SECONDS * 1000 },
  };
}

export interface DeliveryResult {
  outcome: 'delivered' | 'skipped_unsubscribed';
  status?: number;
  ms?: number;
}

/**
 * The `webhooks` worker: one POST per attempt, signed, with a delivery-id header for dedupe. A 2xx ends the
 * delivery; anything else (3xx, 4xx, 5xx, timeout, network error, refused address) fails the attempt and BullMQ
 * retries it after `retryDelayMs` — until the next attempt would start after the retry window, when the
 * delivery fails for good ("dead"): it stays in the failed set, visible in Bull Board, replayable.
 */
export function startWebhookWorker(ctx: AppContext, opts: WebhookWorkerOptions = webhookWorkerOptions(ctx.env)): Worker {
  const slots = new EndpointSlots(opts.perEndpoint);
  const log = ctx.log.child({ queue: WEBHOOKS_QUEUE });

  const processor = async (job: Job<DeliveryJob>, token?: string): Promise<DeliveryResult> => {
    const d = job.data;
    const hook = (await ctx.configs.get(ctx.sql)).doc.webhooks.find((w) => w.id === d.webhook_id);
    if (!hook) {
      recordWebhookDead(d.webhook_id);
      throw new UnrecoverableError(`unknown_webhook: webhook ${d.webhook_id} is not in the config in force (replay it once it is back)`);
    }
    // A webhook that no longer lists this event type was unsubscribed after the fan-out: nothing to send.
    if (!(hook.events as readonly string[]).includes(d.event.type)) return { outcome: 'skipped_unsubscribed' };
    if (!slots.tryAcquire(hook.id)) {
      // Endpoint full in this process: back to the queue without using an attempt (DelayedError).
      await job.moveToDelayed(Date.now() + slots.retryAfterMs(hook.id), token);
      throw new DelayedError();
    }
    const started = Date.now();
    let r: PostResult;
    try {
      r = await attempt(hook, job, opts);
    } finally {
      slots.release(hook.id, Date.now() - started);
    }
    recordWebhookAttempt(hook.id, r.result, r.result === 'refused' ? null : r.ms);
    if (r.result === 'delivered') return { outcome: 'delivered', status: r.status, ms: r.ms };

    const why = 'status' in r ? `${r.result}: receiver answered ${r.status}` : `${r.result}: ${r.message}`;
    const windowStart = (d.replayed_at ? Date.parse(d.replayed_at) : NaN) || job.timestamp;
    const next = retryDelayMs(job.attemptsMade + 1, d.delivery_id, opts.retry);
    const lg = log.child({ webhook_id: hook.id, delivery_id: d.delivery_id, event_id: d.event.id, attempt: job.attemptsMade + 1 });
    if (Date.now() + next > windowStart + opts.retry.windowMs) {
      recordWebhookDead(hook.id);
      lg.warn({ reason: why }, 'webhook delivery dead: retry window over');
      throw new UnrecoverableError(`dead: no 2xx after ${job.attemptsMade + 1} attempts; last ${why}`);
    }
    lg.info({ reason: why, retry_in_ms: next }, 'webhook delivery failed; will retry');
    throw new Error(why);
  };

  const worker = new Worker<DeliveryJob, DeliveryResult>(WEBHOOKS_QUEUE, processor, {
    connection: ctx.redis,
    prefix: ctx.env.TALLY_PREFIX,
    concurrency: opts.concurrency,
    ...WORKER_DEFAULTS,
    removeOnComplete: { age: 7 * 24 * 3600, count: 100_000 },
    removeOnFail: { count: 1_000_000 }, // dead deliveries are kept for an operator (job options say so too)
    settings: { backoffStrategy: (attemptsMade: number, _type?: string, _err?: Error, job?: { data: unknown }) => retryDelayMs(attemptsMade, (job?.data as DeliveryJob | undefined)?.delivery_id ?? '', opts.retry) },
  });
  worker.on('error', (err) => log.error({ err }, 'webhook worker error'));
  workerCreated(worker); // job metrics attach here
  return worker;
}

function attempt(hook: WebhookConfig, job: Job<DeliveryJob>, opts: WebhookWorkerOptions): Promise<PostResult> {
  const body = deliveryBody(job.data.event);
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'tally-webhooks/1',
    [SIGNATURE_HEADER]: signatureHeader(hook.secret, body),
    'x-tally-delivery-id': job.data.delivery_id,
    'x-tally-event-id': job.data.event.id,
    'x-tally-event-type': job.data.event.type,
    'x-tally-attempt': String(job.attemptsMade + 1),
  };
  return postOnce(new URL(hook.url), body, headers, { timeoutMs: opts.timeoutMs, allowPrivate: hook.allow_private_network, resolver: opts.resolver });
}
