import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppContext } from '../context.ts';
import { dbNow } from '../db/clock.ts';
import { HttpError } from '../errors.ts';
import { bodyErrorOf, rawBodyOf } from '../http/body.ts';
import { idempotentId } from '../http/idempotency.ts';
import { errors, limitSchema, named } from '../http/schemas.ts';
import { idSchema } from '../queues/common.ts';
import { HoldBatcher } from './hold-batcher.ts';
import { getHold, holdRequestSchema, holdView, placeHold, releaseHoldById } from './holds.ts';
import { listOrders } from '../ledger/sql/orders.ts';
import { createOrder, findOrder, orderPaid, orderRequestSchema, orderView, paidCallbackSchema, signatureValid } from './orders.ts';
import { readUsage, usageQuerySchema } from './usage.ts';

const holdParams = z.object({ hold_id: idSchema });
const orderParams = z.object({ order_id: idSchema });
const userParams = z.object({ user_id: idSchema });

const ordersQuery = z.object({ limit: limitSchema(50, 500), cursor: z.string().max(200).optional().describe('next_cursor of the previous page') }).strict();

/** Order cursors: base64url of `o:` and the last order_id of the page (opaque to clients). */
function encodeOrderCursor(orderId: string): string {
  return Buffer.from(`o:${orderId}`).toString('base64url');
}
function decodeOrderCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const id = text.startsWith('o:') ? text.slice(2) : '';
  if (!idSchema.safeParse(id).success) throw new HttpError(400, 'invalid_cursor', 'malformed cursor');
  return id;
}

const amount = z.number().int();
const holdSchema = named(
  z.object({
    hold_id: z.string(),
    event_id: z.string(),
    user_id: z.string(),
    asset: z.string(),
    source_type: z.string(),
    amount,
    status: z.enum(['active', 'settled', 'released', 'expired']),
    expires_at: z.string(),
    settle_event_id: z.string().nullable(),
    settled_amount: amount.nullable(),
    created_at: z.string(),
  }),
  'Hold',
);
const orderSchema = named(
  z.object({
    order_id: z.string(),
    user_id: z.string(),
    status: z.enum(['pending', 'paid']),
    sku: z.string(),
    asset: z.string(),
    amount,
    price_cents: amount,
    provider_ref: z.string().nullable(),
    paid_at: z.string().nullable(),
    created_at: z.string(),
  }),
  'Order',
);
const paidView = z.object({ order_id: z.string(), status: z.literal('paid'), grant_event_id: z.string() });
const usageTotals = { amount, count: amount, input_tokens: amount, output_tokens: amount };
const usageView = z.object({
  user_id: z.string(),
  asset: z.string().nullable(),
  window: z.enum(['24h', '7d', '30d', 'all']),
  since: z.string().nullable(),
  total: amount,
  count: amount,
  tokens: z.object({ input: amount, output: amount }),
  by_source_type: z.array(z.object({ source_type: z.string(), ...usageTotals })),
  by_model: z.array(z.object({ model: z.string(), ...usageTotals })),
});

/**
 * The payment provider has no bearer token: the callback is authenticated by its signature over the exact
 * bytes, checked before the body is validated (a forgery gets 401 whatever it contains).
 */
function verifySignature(secret: string | undefined) {
  return async (req: FastifyRequest) => {
    const signature = req.headers['x-tally-signature'];
    if (!signatureValid(secret, rawBodyOf(req), typeof signature === 'string' ? signature : undefined)) {
      throw new HttpError(401, 'invalid_signature', 'missing or invalid X-Tally-Signature');
    }
    const parseError = bodyErrorOf(req);
    if (parseError) throw parseError;
  };
}

/** Holds, orders and the payment callback, and the usage dashboard (issue 5). */
export function moneyRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  // Hold requests of this process are group-committed (TALLY_HOLD_BATCH_MAX); closed after the last request is answered.
  const holds = new HoldBatcher(ctx.sql, ctx.configs, {
    maxBatch: ctx.env.TALLY_HOLD_BATCH_MAX,
    parallel: ctx.env.TALLY_HOLD_BATCH_PARALLEL,
    log: ctx.log.child({ component: 'holds' }),
  });
  app.addHook('onClose', () => holds.close());

  r.post('/v1/holds', {
    config: { auth: 'api' },
    schema: {
      tags: ['money'],
      summary: 'Reserve the max cost of some work (idempotent by event_id)',
      body: holdRequestSchema,
      response: { 201: holdSchema, ...errors(400, 402, 409, 422) },
    },
  }, async (req, reply) => {
    const result = await placeHold(ctx.sql, ctx.configs, req.body, holds);
    if (result.kind === 'insufficient') {
      throw new HttpError(402, 'insufficient', `available ${result.available} does not cover the hold of ${result.required}`, {
        required: Number(result.required),
        available: Number(result.available),
      });
    }
    return reply.status(201).send(holdView(result.hold));
  });

  r.get('/v1/holds/:hold_id', {
    config: { auth: 'api' },
    schema: { tags: ['money'], summary: 'A hold', params: holdParams, response: { 200: holdSchema, ...errors(400, 404) } },
  }, async (req) => {
    const hold = await getHold(ctx.sql, req.params.hold_id);
    if (!hold) throw new HttpError(404, 'unknown_hold', `no hold "${req.params.hold_id}"`);
    return holdView(hold);
  });

  r.delete('/v1/holds/:hold_id', {
    config: { auth: 'api' },
    schema: { tags: ['money'], summary: 'Release a hold', params: holdParams, response: { 200: holdSchema, ...errors(400, 404) } },
  }, async (req) => {
    const hold = await releaseHoldById(ctx.sql, req.params.hold_id, holds);
    if (!hold) throw new HttpError(404, 'unknown_hold', `no hold "${req.params.hold_id}"`);
    return holdView(hold);
  });

  r.post('/v1/orders', {
    config: { auth: 'api' },
    schema: { tags: ['money'], summary: 'A pending order for a product', body: orderRequestSchema, response: { 201: orderSchema, ...errors(400, 409, 422) } },
  }, async (req, reply) => {
    // Under an Idempotency-Key the order's id comes from the key: a request run again creates nothing new.
    const key = idempotentId(req);
    return reply.status(201).send(orderView(await createOrder(ctx.sql, ctx.configs, req.body, key === undefined ? undefined : `o-${key}`)));
  });

  r.get('/v1/users/:user_id/orders', {
    config: { auth: 'api' },
    schema: {
      tags: ['money'],
      summary: 'A user\'s orders, newest first (paginated)',
      params: userParams,
      querystring: ordersQuery,
      response: { 200: z.object({ items: z.array(orderSchema), next_cursor: z.string().nullable() }), ...errors(400) },
    },
  }, async (req) => {
    const { limit, cursor } = req.query;
    const rows = await listOrders(ctx.sql, req.params.user_id, limit + 1, cursor === undefined ? undefined : decodeOrderCursor(cursor));
    const page = rows.slice(0, limit);
    return { items: page.map(orderView), next_cursor: rows.length > limit ? encodeOrderCursor(page.at(-1)!.order_id) : null };
  });

  r.get('/v1/orders/:order_id', {
    config: { auth: 'api' },
    schema: { tags: ['money'], summary: 'An order', params: orderParams, response: { 200: orderSchema, ...errors(400, 404) } },
  }, async (req) => {
    const order = await findOrder(ctx.sql, req.params.order_id);
    if (!order) throw new HttpError(404, 'unknown_order', `no order "${req.params.order_id}"`);
    return orderView(order);
  });

  r.post('/v1/orders/:order_id/paid', {
    config: { auth: 'signed', rawBody: true },
    preValidation: verifySignature(ctx.env.TALLY_PAYMENT_SECRET),
    schema: {
      tags: ['money'],
      summary: 'The payment provider\'s callback: the first valid one grants the order',
      params: orderParams,
      body: paidCallbackSchema,
      response: { 200: paidView, ...errors(400, 404, 409, 422) },
    },
  }, async (req) => {
    const { order_id } = req.params;
    const { order, first } = await orderPaid(ctx.sql, ctx.producer, order_id, req.body);
    if (first) ctx.log.info({ order_id, user_id: order.user_id, amount: Number(order.amount) }, 'order paid; grant enqueued');
    return { order_id, status: 'paid' as const, grant_event_id: `order-${order_id}` };
  });

  r.get('/v1/users/:user_id/usage', {
    config: { auth: 'api' },
    schema: { tags: ['money'], summary: 'What a user\'s charges cost in a window, by source type and model', params: userParams, querystring: usageQuerySchema, response: { 200: usageView, ...errors(400) } },
  }, async (req) => readUsage(ctx.sql, req.params.user_id, req.query, await dbNow(ctx.sql)));
}
