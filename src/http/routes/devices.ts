import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { readDeviceState, setDeviceActive } from '../../affinity/devices.ts';
import type { AppContext } from '../../context.ts';
import { idSchema } from '../../queues/common.ts';
import { auditWrites } from '../audit.ts';
import { errors, named } from '../schemas.ts';

const params = z.object({ user_id: idSchema, device_id: idSchema }).strict();
const body = z.object({ active: z.boolean() }).strict();
const deviceStatus = named(
  z.object({
    active: z.boolean().describe('false: the device\'s affinity.events answer noop_device_inactive and change nothing'),
    value: z.number().int(),
    level: z.number().int(),
  }),
  'DeviceStatus',
);

/** Deactivating and reactivating a device (CONTRACT v2 §4), over src/affinity/devices.ts. */
export function deviceRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  auditWrites(app, ctx);

  r.put('/v1/admin/users/:user_id/devices/:device_id', {
    config: { auth: 'admin' },
    schema: {
      tags: ['affinity', 'admin'],
      summary: 'Activate or deactivate a device (idempotent); a device never seen is created',
      params,
      body,
      response: { 200: deviceStatus, ...errors(400) },
    },
  }, async (req) => setDeviceActive(ctx.sql, req.params.user_id, req.params.device_id, req.body.active, ctx.configs));

  r.get('/v1/admin/users/:user_id/devices/:device_id', {
    config: { auth: 'admin' },
    schema: {
      tags: ['affinity', 'admin'],
      summary: 'Whether a device is active, with its affinity value and level (a device never seen: active, 0)',
      params,
      response: { 200: deviceStatus, ...errors(400) },
    },
  }, async (req) => readDeviceState(ctx.sql, req.params.user_id, req.params.device_id, ctx.configs));
}
