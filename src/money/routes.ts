import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../context.ts';
import { dbNow } from '../db/clock.ts';
import { HttpError } from '../errors.ts';
import { authorize } from '../http/auth.ts';
import { parse } from '../http/validate.ts';
import { idSchema } from '../queues/common.ts';
import { getHold, holdRequestSchema, holdView, placeHold, releaseHoldById } from './holds.ts';
import { createOrder, findOrder, orderPaid, orderRequestSchema, orderView, paidCallbackSchema, signatureValid } from './orders.ts';
import { readUsage, usageQuerySchema } from './usage.ts';

const holdParams = z.object({ hold_id: idSchema });
const orderParams = z.object({ order_id: idSchema });
const userParams = z.object({ user_id: idSchema });

/** The raw request body, kept for the payment callback's signature (which is over the exact bytes). */
const rawBodies = new WeakMap<FastifyRequest, string>();

/** Holds, orders and the payment callback, and the usage dashboard (issue 5). */
export function moneyRoutes(app: FastifyInstance, ctx: AppContext): void {
  const api = authorize({ api: ctx.env.TALLY_API_TOKEN, admin: ctx.env.TALLY_ADMIN_TOKEN }, 'api');

  // In this scope only: JSON bodies are parsed by us so the raw text stays available. A body that is not
  // JSON is left undefined (and fails validation as 400) so the callback still answers 401 to a bad signature.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    rawBodies.set(req, body as string);
    try {
      done(null, (body as string).length === 0 ? undefined : JSON.parse(body as string));
    } catch {
      done(null, undefined);
    }
  });

  app.post('/v1/holds', { preHandler: api }, async (req, reply) => {
    const body = parse(holdRequestSchema, req.body, 'body');
    const r = await placeHold(ctx.sql, ctx.configs, body);
    if (r.kind === 'insufficient') {
      throw new HttpError(402, 'insufficient', `available ${r.available} does not cover the hold of ${r.required}`, {
        required: Number(r.required),
        available: Number(r.available),
      });
    }
    return reply.status(201).send(holdView(r.hold));
  });

  app.get('/v1/holds/:hold_id', { preHandler: api }, async (req) => {
    const { hold_id } = parse(holdParams, req.params, 'path');
    const hold = await getHold(ctx.sql, hold_id);
    if (!hold) throw new HttpError(404, 'unknown_hold', `no hold "${hold_id}"`);
    return holdView(hold);
  });

  app.delete('/v1/holds/:hold_id', { preHandler: api }, async (req) => {
    const { hold_id } = parse(holdParams, req.params, 'path');
    const hold = await releaseHoldById(ctx.sql, hold_id);
    if (!hold) throw new HttpError(404, 'unknown_hold', `no hold "${hold_id}"`);
    return holdView(hold);
  });

  app.post('/v1/orders', { preHandler: api }, async (req, reply) => {
    const body = parse(orderRequestSchema, req.body, 'body');
    const order = await createOrder(ctx.sql, ctx.configs, body);
    return reply.status(201).send(orderView(order));
  });

  app.get('/v1/orders/:order_id', { preHandler: api }, async (req) => {
    const { order_id } = parse(orderParams, req.params, 'path');
    const order = await findOrder(ctx.sql, order_id);
    if (!order) throw new HttpError(404, 'unknown_order', `no order "${order_id}"`);
    return orderView(order);
  });

  // Authenticated by the signature alone: the payment provider has no bearer token.
  app.post('/v1/orders/:order_id/paid', async (req) => {
    const signature = req.headers['x-tally-signature'];
    if (!signatureValid(ctx.env.TALLY_PAYMENT_SECRET, rawBodies.get(req) ?? '', typeof signature === 'string' ? signature : undefined)) {
      throw new HttpError(401, 'invalid_signature', 'missing or invalid X-Tally-Signature');
    }
    const { order_id } = parse(orderParams, req.params, 'path');
    const body = parse(paidCallbackSchema, req.body, 'body');
    const { order, first } = await orderPaid(ctx.sql, ctx.producer, order_id, body);
    if (first) ctx.log.info({ order_id, user_id: order.user_id, amount: Number(order.amount) }, 'order paid; grant enqueued');
    return { order_id, status: 'paid', grant_event_id: `order-${order_id}` };
  });

  app.get('/v1/users/:user_id/usage', { preHandler: api }, async (req) => {
    const { user_id } = parse(userParams, req.params, 'path');
    const q = parse(usageQuerySchema, req.query, 'query');
    return readUsage(ctx.sql, user_id, q, await dbNow(ctx.sql));
  });
}
