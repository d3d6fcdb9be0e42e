import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../context.ts';
import { HttpError } from '../errors.ts';
import { authorize } from '../http/auth.ts';
import { parse } from '../http/validate.ts';
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

export function affinityRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tokens = { api: ctx.env.TALLY_API_TOKEN, admin: ctx.env.TALLY_ADMIN_TOKEN };

  app.get('/v1/users/:user_id/devices/:device_id/affinity', { preHandler: authorize(tokens, 'api') }, async (req) => {
    const p = parse(deviceParams, req.params, 'path');
    const { doc } = await ctx.configs.get(ctx.sql);
    return readAffinity(ctx.sql, affinitySettingsOf(doc), p.user_id, p.device_id);
  });

  // Enqueued like any producer would (same validation, exactly-once by event_id), then awaited.
  app.post('/v1/admin/affinity/adjust', { preHandler: authorize(tokens, 'admin') }, async (req) => {
    const body = parse(adjustBody, req.body, 'body');
    const eventId = body.event_id ?? `adjust-${randomUUID()}`;
    try {
      const result = await ctx.producer.affinityAdjust({ ...body, event_id: eventId }, { wait: true, timeoutMs: ADJUST_TIMEOUT_MS });
      return { event_id: eventId, ...(result as Record<string, unknown>) };
    } catch (err) {
      throw jobFailure(err as Error);
    }
  });
}
