import { sha256 } from '../config/store.ts';
import type { WebhookConfig, WebhookEventType } from '../config/alerts-webhooks.ts';

/** The BullMQ queue webhook deliveries go through (CONTRACT §6), under TALLY_PREFIX; visible in Bull Board. */
export const WEBHOOKS_QUEUE = 'webhooks';

/** What a webhook receives as the POST body, in this key order: `{id, type, ts, user_id, data}`. */
export interface WebhookEvent {
  /** Unique per event (the outbox row's push id, `ob-…`); a receiver dedupes on it. */
  id: string;
  type: WebhookEventType;
  /** ISO-8601 with zone: when the event was committed. */
  ts: string;
  user_id: string;
  data: Record<string, unknown>;
}

/** One job on the `webhooks` queue: one event for one endpoint. No secret and no URL: both are read from the
 * config in force when the attempt is made, so a rotated secret or moved endpoint applies to pending retries. */
export interface DeliveryJob {
  delivery_id: string;
  webhook_id: string;
  event: WebhookEvent;
  /** Set by a replay: the retry window starts again from here instead of the job's creation. */
  replayed_at?: string;
}

/**
 * The delivery id, also the BullMQ job id: deterministic from (webhook, event), so the outbox fan-out may run
 * twice (at-least-once) and still enqueue each delivery once while the job is kept. Hashed because ids of both
 * may contain `.`: `a.b` + `c` and `a` + `b.c` must not collide.
 */
export function deliveryId(webhookId: string, eventId: string): string {
  return `whd-${sha256(JSON.stringify([webhookId, eventId])).slice(0, 40)}`;
}

/** The POST body, keys in contract order (the signature is over these exact bytes). */
export function deliveryBody(e: WebhookEvent): string {
  return JSON.stringify({ id: e.id, type: e.type, ts: e.ts, user_id: e.user_id, data: e.data });
}

/** Every (webhook, event) pair whose webhook lists the event's type: pure, so the fan-out is easy to test. */
export function planDeliveries(webhooks: readonly WebhookConfig[], events: readonly WebhookEvent[]): DeliveryJob[] {
  const jobs: DeliveryJob[] = [];
  for (const event of events) {
    for (const w of webhooks) {
      if ((w.events as readonly string[]).includes(event.type)) jobs.push({ delivery_id: deliveryId(w.id, event.id), webhook_id: w.id, event });
    }
  }
  return jobs;
}

export interface RetryPolicy {
  /** First retry delay, ms; doubles per failed attempt up to `maxMs`. */
  baseMs: number;
  maxMs: number;
  /** How long after its creation (or replay) a delivery is still retried. */
  windowMs: number;
}

/**
 * Delay before retry number `attempt` (1 = after the first failure): exponential, capped, with ±25 % jitter so
 * the deliveries a receiver's outage failed together do not all come back in the same second. The jitter is
 * derived from the delivery id, so the worker's "is there time for another attempt" check and BullMQ's
 * backoff agree on the same number.
 */
export function retryDelayMs(attempt: number, deliveryIdValue: string, p: RetryPolicy): number {
  const exp = Math.min(p.maxMs, p.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  const h = Number.parseInt(sha256(`${deliveryIdValue}#${attempt}`).slice(0, 8), 16) / 0xffffffff;
  return Math.max(1, Math.round(exp * (0.75 + h * 0.5)));
}
