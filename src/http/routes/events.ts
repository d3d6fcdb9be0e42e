import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { canonicalJson } from '../../config/store.ts';
import type { AppContext } from '../../context.ts';
import { HttpError } from '../../errors.ts';
import { affinityJobSchema } from '../../queues/affinity-events/schema.ts';
import { chargesJobSchema } from '../../queues/charges/schema.ts';
import { QUEUE, describeIssues } from '../../queues/common.ts';
import { grantsJobSchema } from '../../queues/grants/schema.ts';
import { apiSchemas, errors, named } from '../schemas.ts';
import { applyInWaves, enqueueAsBatches, enqueueAsJobs, type AcceptedEvent, type EventResult } from './events-enqueue.ts';

export const MAX_EVENTS = 1000;
export const MAX_WAIT_EVENTS = 100;
export const WAIT_TIMEOUT_MS = 30_000;
/** 1000 events of up to ~8 KB each; larger calls are split by the producer. */
export const EVENTS_BODY_LIMIT = 8 * 1024 * 1024;

/** Each payload type, the queue it goes to and the schema the queue's worker validates it with. */
const TYPES: Record<string, { queue: string; schema: z.ZodType; admin?: true }> = {
  grant: { queue: QUEUE.grants, schema: grantsJobSchema },
  'reward.event': { queue: QUEUE.grants, schema: grantsJobSchema },
  charge: { queue: QUEUE.charges, schema: chargesJobSchema },
  refund: { queue: QUEUE.charges, schema: chargesJobSchema },
  'affinity.event': { queue: QUEUE.affinityEvents, schema: affinityJobSchema },
  // An admin operation over HTTP (POST /v1/admin/affinity/adjust): the admin token only, here too.
  'affinity.adjust': { queue: QUEUE.affinityEvents, schema: affinityJobSchema, admin: true },
};

// Items are checked one by one by the handler (a bad event is answered, not the whole call refused); the document
// says what each should be: a payload of one of the queues.
const eventItem = z.unknown();
apiSchemas.add(eventItem, { anyOf: ['GrantsJob', 'ChargesJob', 'AffinityEventsJob'].map((n) => ({ $ref: `#/components/schemas/${n}` })) });
const body = named(z.object({ events: z.array(eventItem).min(1).max(MAX_EVENTS) }).strict(), 'EventsRequest', undefined, { input: true });
const query = z
  .object({
    wait: z.enum(['true', 'false']).optional().describe(`true: answer once applied (at most ${MAX_WAIT_EVENTS} events)`),
    mode: z
      .enum(['jobs', 'batch'])
      .optional()
      .describe('jobs (default): one job per event, jobId = event_id; batch: one batch job per queue ({type:"batch", events}), same exactly-once per event_id'),
  })
  .strict();

const rejection = z.object({ index: z.number().int(), event_id: z.string().optional(), code: z.string(), message: z.string() });
const accepted202 = named(
  z.object({ accepted: z.array(z.string()).describe('event_ids enqueued, in the order sent'), rejected: z.array(rejection) }),
  'EventsAccepted',
);
const result = z.union([z.looseObject({ outcome: z.string() }), z.object({ failed: z.string(), reason: z.string() })]);
const results200 = named(z.object({ results: z.array(result).describe('per event, in the order sent: its ApplyResult, or {failed, reason}') }), 'EventsApplied');

type Rejection = z.infer<typeof rejection>;
type Checked = { ok: true; event: AcceptedEvent; key: string; canonical: string } | { ok: false; rejection: Rejection };

function check(raw: unknown, index: number, isAdmin: boolean): Checked {
  const reject = (code: string, message: string): Checked => {
    const id = (raw as { event_id?: unknown } | null)?.event_id;
    return { ok: false, rejection: { index, ...(typeof id === 'string' && id.length <= 128 ? { event_id: id } : {}), code, message } };
  };
  const type = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as { type?: unknown }).type : undefined;
  const spec = typeof type === 'string' && Object.hasOwn(TYPES, type) ? TYPES[type]! : undefined;
  if (!spec) return reject('invalid_payload', `type must be one of ${Object.keys(TYPES).join(', ')}`);
  if (spec.admin && !isAdmin) return reject('forbidden', `${String(type)} needs the admin token`);
  const parsed = spec.schema.safeParse(raw);
  if (!parsed.success) return reject('invalid_payload', describeIssues(parsed.error));
  const payload = raw as AcceptedEvent['payload'];
  return { ok: true, event: { queue: spec.queue, payload }, key: `${spec.queue}\u0000${payload.event_id}`, canonical: canonicalJson(payload) };
}

/**
 * Sorts a call's events into accepted and rejected. An event_id appears once per queue in a call: a later payload
 * with an event_id seen earlier in the call is rejected — `duplicate_event_id` when it is the same payload (the
 * first one is enqueued), `idempotency_conflict` when it differs.
 */
function sortEvents(events: unknown[], isAdmin: boolean): { accepted: AcceptedEvent[]; order: (number | Rejection)[] } {
  const accepted: AcceptedEvent[] = [];
  const seen = new Map<string, string>();
  const order = events.map((raw, index): number | Rejection => {
    const c = check(raw, index, isAdmin);
    if (!c.ok) return c.rejection;
    const earlier = seen.get(c.key);
    if (earlier !== undefined) {
      const same = earlier === c.canonical;
      return {
        index,
        event_id: c.event.payload.event_id,
        code: same ? 'duplicate_event_id' : 'idempotency_conflict',
        message: same ? 'this event_id appears earlier in the call; it is enqueued once' : 'this event_id appears earlier in the call with a different payload',
      };
    }
    seen.set(c.key, c.canonical);
    accepted.push(c.event);
    return accepted.length - 1;
  });
  return { accepted, order };
}

function isAdmin(req: FastifyRequest): boolean {
  return req.credential?.role === 'admin';
}

/** `POST /v1/events`: HTTP ingest for producers without BullMQ (CONTRACT v2 §4, docs/producers.md). */
export function eventRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post('/v1/events', {
    config: { auth: 'api' },
    bodyLimit: EVENTS_BODY_LIMIT,
    schema: {
      tags: ['ingest'],
      summary: `Enqueue 1–${MAX_EVENTS} queue payloads (each with its type): jobId = event_id (or ?mode=batch: one batch job per queue), a bad one answered and not enqueued`,
      querystring: query,
      body,
      response: { 200: results200, 202: accepted202, ...errors(400, 413, 503) },
    },
  }, async (req, reply) => {
    const wait = req.query.wait === 'true';
    const events = req.body.events;
    if (wait && events.length > MAX_WAIT_EVENTS) {
      throw new HttpError(400, 'too_many_to_wait', `?wait=true takes at most ${MAX_WAIT_EVENTS} events (got ${events.length})`);
    }
    const { accepted, order } = sortEvents(events, isAdmin(req));
    const enqueue = req.query.mode === 'batch' ? enqueueAsBatches : enqueueAsJobs;
    const rejected = order.filter((o): o is Rejection => typeof o !== 'number');
    let done: EventResult[] = [];
    try {
      if (!wait) {
        if (accepted.length > 0) await enqueue(ctx.producer, accepted);
      } else if (accepted.length > 0) {
        // In waves, so that a user's events are applied in the order sent, within and across queues (applyInWaves).
        done = await applyInWaves(accepted, (events) => enqueue(ctx.producer, events), WAIT_TIMEOUT_MS, req.query.mode === 'batch');
      }
    } catch (err) {
      // Some queues may have taken their events: a retry of the whole call is safe (each event is decided once by its
      // event_id; a batch job's id comes from its events).
      ctx.log.warn({ err: { message: (err as Error).message } }, 'events not enqueued');
      throw new HttpError(503, 'queue_unavailable', 'the queue could not be reached; retry the call (it is safe: jobId = event_id)');
    }
    if (!wait) return reply.status(202).send({ accepted: accepted.map((a) => a.payload.event_id), rejected });
    // A rejection's reason starts with its code, as a worker's verdict does (CONTRACT §3: reasons start with a stable code).
    const results = order.map((o) => (typeof o === 'number' ? done[o]! : { failed: o.code, reason: `${o.code}: ${o.message}` }));
    return reply.status(200).send({ results });
  });
}
