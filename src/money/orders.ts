import { createHmac } from 'node:crypto';
import { z } from 'zod';
import type { ConfigCache } from '../config/store.ts';
import type { Sql } from '../db/client.ts';
import { HttpError } from '../errors.ts';
import { safeEqual } from '../http/auth.ts';
import { findOrder, insertOrder, type OrderRow } from '../ledger/sql/orders.ts';
import type { TallyProducer } from '../producers/index.ts';
import { idSchema, isoTimestamp, plainString } from '../queues/common.ts';
import { ORDER_GRANT_RELAY, enqueueOrderGrants, orderGrant, within } from './order-grant-relay.ts';
import { markPaid } from './sql/order-grants.ts';

export const orderRequestSchema = z.object({ user_id: idSchema, sku: plainString(128).min(1) }).strict();

/**
 * The payment provider's callback body. Fields tally does not know are ignored (providers add some: zod's default
 * strips them). `amount_cents`, when sent, must be the order's price; as a JSON integer or a string of digits.
 */
export const paidCallbackSchema = z.object({
  order_id: idSchema,
  status: z.literal('paid'),
  provider_ref: plainString(256).min(1),
  paid_at: isoTimestamp,
  amount_cents: z.union([z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), z.string().regex(/^\d{1,15}$/)]).optional(),
});

export function orderView(o: OrderRow) {
  return {
    order_id: o.order_id,
    user_id: o.user_id,
    status: o.status,
    sku: o.sku,
    asset: o.asset,
    amount: Number(o.amount),
    price_cents: Number(o.price_cents),
    provider_ref: o.provider_ref,
    paid_at: o.paid_at?.toISOString() ?? null,
    created_at: o.created_at.toISOString(),
  };
}

/** A pending order for an active product of the config in force; the price is fixed at creation. `orderId`: see insertOrder. */
export async function createOrder(sql: Sql, configs: ConfigCache, req: z.infer<typeof orderRequestSchema>, orderId?: string): Promise<OrderRow> {
  const { doc } = await configs.get(sql);
  const product = doc.products[req.sku];
  if (!product) throw new HttpError(422, 'unknown_sku', `no product "${req.sku}"`);
  if (!product.active) throw new HttpError(422, 'inactive_product', `product "${req.sku}" is not on sale`);
  return insertOrder(sql, { user_id: req.user_id, sku: req.sku, asset: product.asset, amount: BigInt(product.amount), price_cents: BigInt(product.price_cents), order_id: orderId });
}

/** `X-Tally-Signature`: hex HMAC-SHA256 of the raw body with TALLY_PAYMENT_SECRET, compared in constant time. */
export function signatureValid(secret: string | undefined, rawBody: string, signature: string | undefined): boolean {
  if (!secret || !signature) return false;
  const expected = createHmac('sha256', secret).update(rawBody).digest('hex');
  return safeEqual(signature.trim().toLowerCase(), expected);
}

export { orderGrant };

/** Why a callback cannot be right for this order (409: it contradicts what the order says), or null. */
function contradiction(order: OrderRow, body: z.infer<typeof paidCallbackSchema>): HttpError | null {
  if (body.amount_cents !== undefined && BigInt(body.amount_cents) !== order.price_cents) {
    return new HttpError(409, 'amount_mismatch', `amount_cents ${body.amount_cents} is not the order's price_cents ${order.price_cents}`);
  }
  // A paid_at before the order's creation is the provider's clock running behind ours (or a fixed timestamp): the
  // money was taken, so the payment is honoured and paid_at is kept as the provider reported it, for the audit.
  return null;
}

/**
 * The payment callback, after its signature was checked. A callback that contradicts the order (another amount) is
 * refused with 409 and changes nothing. Otherwise the paid mark and the intent
 * to grant are recorded in one statement; then the grant is enqueued — on every valid callback, not only the first —
 * but never waited for longer than ORDER_GRANT_RELAY.enqueueWaitMs: when Redis is down the callback still answers,
 * and the relay (every worker process) enqueues the grant once Redis is back. jobId = event_id and the durable
 * processed_events make every enqueue after the first a no-op, so the order is granted exactly once.
 */
export async function orderPaid(sql: Sql, producer: TallyProducer, orderId: string, body: z.infer<typeof paidCallbackSchema>) {
  if (body.order_id !== orderId) throw new HttpError(400, 'order_mismatch', 'order_id in the body does not match the path');
  const order = await findOrder(sql, orderId);
  if (!order) throw new HttpError(404, 'unknown_order', `no order "${orderId}"`);
  const refused = contradiction(order, body);
  if (refused) throw refused;
  const marked = await markPaid(sql, orderId, body.provider_ref, body.paid_at);
  if (!marked) throw new HttpError(404, 'unknown_order', `no order "${orderId}"`);
  const queued = await within(enqueueOrderGrants(sql, producer, [marked.order]), ORDER_GRANT_RELAY.enqueueWaitMs);
  return { order: marked.order, first: marked.first, queued };
}

export { findOrder };
