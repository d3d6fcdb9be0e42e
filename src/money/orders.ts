import { createHmac } from 'node:crypto';
import { z } from 'zod';
import type { ConfigCache } from '../config/store.ts';
import type { Sql } from '../db/client.ts';
import { HttpError } from '../errors.ts';
import { safeEqual } from '../http/auth.ts';
import { findOrder, insertOrder, markOrderPaid, type OrderRow } from '../ledger/sql/orders.ts';
import type { TallyProducer } from '../producers/index.ts';
import { idSchema, isoTimestamp } from '../queues/common.ts';

export const orderRequestSchema = z.object({ user_id: idSchema, sku: z.string().min(1).max(128) }).strict();

export const paidCallbackSchema = z
  .object({
    order_id: idSchema,
    status: z.literal('paid'),
    provider_ref: z.string().min(1).max(256),
    paid_at: isoTimestamp,
  })
  .strict();

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

/** The grant an order pays for. Deterministic (from the stored order only), so every re-enqueue is the same event. */
export function orderGrant(o: OrderRow) {
  return {
    event_id: `order-${o.order_id}`,
    user_id: o.user_id,
    asset: o.asset,
    amount: Number(o.amount),
    source: 'purchase',
    source_id: o.order_id,
    description: `order ${o.order_id} (${o.sku})`,
  };
}

/**
 * The payment callback, after its signature was checked. The paid status is recorded in PostgreSQL first;
 * then the grant is enqueued — on every valid callback for a paid order, not only the first: if a crash
 * came between the two, the provider's retry enqueues it. jobId = event_id and the durable processed_events
 * make every enqueue after the first a no-op, so the order is granted exactly once.
 */
export async function orderPaid(sql: Sql, producer: TallyProducer, orderId: string, body: z.infer<typeof paidCallbackSchema>) {
  if (body.order_id !== orderId) throw new HttpError(400, 'order_mismatch', 'order_id in the body does not match the path');
  const marked = await markOrderPaid(sql, orderId, body.provider_ref, body.paid_at);
  if (!marked) throw new HttpError(404, 'unknown_order', `no order "${orderId}"`);
  await producer.grant(orderGrant(marked.order));
  return { order: marked.order, first: marked.first };
}

export { findOrder };
