import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppContext } from '../context.ts';
import { HttpError } from '../errors.ts';
import { auditWrites } from '../http/audit.ts';
import { errors, named } from '../http/schemas.ts';
import { affinityAdjustSchema } from '../queues/affinity-events/schema.ts';
import { idSchema } from '../queues/common.ts';
import { readAffinity } from './read.ts';
import { affinitySettingsOf } from './settings.ts';

const deviceParams = z.object({ user_id: idSchema, device_id: idSchema }).strict();
/** The queue payload without `type`; `event_id` is generated when the operator gives none. */
const adjustBody = affinityAdjustSchema.omit({ type: true }).extend({ event_id: idSchema.optional() }).strict();

const ADJUST_TIMEOUT_MS = 30_000;

/** A failed job's reason starts with its stable code: conflict → 409, anything else the job refused → 422. */
function jobFailure(err: Error): HttpError {
  const message = err.message ?? String(err);
  if (/timed out|timeout/i.test(message)) {
    return new HttpError(504, 'timeout', 'the adjust was enqueued but not applied in time; it will still be applied (same event_id to check)');
  }
  const code = /^([a-z_]+):/.exec(message)?.[1] ?? 'job_failed';
  return new HttpError(code === 'idempotency_conflict' ? 409 : 422, code, message);
}

const num = z.number();
const affinityView = named(
  z.object({
    user_id: z.string(),
    device_id: z.string(),
    value: num,
    level: num,
    next_level: num.nullable(),
    next_threshold: num.nullable(),
    progress: num.describe('0–1 of the way to the next level; 1 at the top level'),
  }),
  'Affinity',
);
/** The job's ApplyResult (CONTRACT §3), with the event_id used. */
const adjustResult = z.looseObject({
  event_id: z.string(),
  outcome: z.string(),
  change: num.optional(),
  before: num.optional(),
  after: num.optional(),
  level_before: num.optional(),
  level_after: num.optional(),
  rewards: z.array(z.unknown()).optional(),
});

export function affinityRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  auditWrites(app, ctx); // the admin adjust is recorded with who sent it

  r.get('/v1/users/:user_id/devices/:device_id/affinity', {
    config: { auth: 'api' },
    schema: { tags: ['affinity'], summary: 'A device\'s affinity and level progress', params: deviceParams, response: { 200: affinityView, ...errors(400) } },
  }, async (req) => {
    const { doc } = await ctx.configs.get(ctx.sql);
    return readAffinity(ctx.sql, affinitySettingsOf(doc), req.params.user_id, req.params.device_id);
  });

  // Enqueued like any producer would (same validation, exactly-once by event_id), then awaited.
  r.post('/v1/admin/affinity/adjust', {
    config: { auth: 'admin' },
    schema: {
      tags: ['affinity', 'admin'],
      summary: 'Adjust an affinity by a delta (bypasses rules, cooldowns and caps; still clamped)',
      body: adjustBody,
      response: { 200: adjustResult, ...errors(400, 409, 422, 504) },
    },
  }, async (req) => {
    const body = req.body;
    const eventId = body.event_id ?? `adjust-${randomUUID()}`;
    try {
      const result = await ctx.producer.affinityAdjust({ ...body, event_id: eventId }, { wait: true, timeoutMs: ADJUST_TIMEOUT_MS });
      return { event_id: eventId, ...(result as { outcome: string }) };
    } catch (err) {
      throw jobFailure(err as Error);
    }
  });
}
