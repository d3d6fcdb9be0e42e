import type { Db } from '../../db/client.ts';
import type { OrderRow } from '../../ledger/sql/orders.ts';

/**
 * pending → paid, once, and with it the intent to grant (grant_queued_at stays NULL until the grant is enqueued):
 * one statement, so no paid order can exist without its pending grant. Returns the order as it is afterwards and
 * whether this call paid it.
 */
export async function markPaid(db: Db, orderId: string, providerRef: string, paidAt: string): Promise<{ order: OrderRow; first: boolean } | undefined> {
  const [paid] = await db<OrderRow[]>`
    UPDATE orders SET status = 'paid', provider_ref = ${providerRef}, paid_at = ${paidAt}::timestamptz, paid_recorded_at = now()
    WHERE order_id = ${orderId} AND status = 'pending' RETURNING *`;
  if (paid) return { order: paid, first: true };
  const [order] = await db<OrderRow[]>`SELECT * FROM orders WHERE order_id = ${orderId}`;
  return order ? { order, first: false } : undefined;
}

/** Paid orders whose grant was not handed to BullMQ yet, recorded paid at least `graceMs` ago, oldest first. */
export function pendingOrderGrants(db: Db, graceMs: number, limit: number): Promise<OrderRow[]> {
  return db<OrderRow[]>`
    SELECT * FROM orders
    WHERE status = 'paid' AND grant_queued_at IS NULL AND paid_recorded_at <= now() - ${graceMs} * interval '1 millisecond'
    ORDER BY paid_recorded_at LIMIT ${limit}`;
}

/** The grants of these orders are in BullMQ now (jobId = event_id: enqueueing again would change nothing). */
export async function markGrantsQueued(db: Db, orderIds: string[]): Promise<void> {
  if (orderIds.length === 0) return;
  await db`UPDATE orders SET grant_queued_at = now() WHERE order_id = ANY(${orderIds}::text[]) AND grant_queued_at IS NULL`;
}

export interface UngrantedOrder {
  order_id: string;
  user_id: string;
  asset: string;
  amount: bigint;
  paid_recorded_at: Date;
}

/**
 * Paid orders recorded at least `graceMs` ago whose grant `order-{order_id}` has no decision in processed_events:
 * never applied (lost with a Redis that restarted without AOF, refused, or still waiting in a long backlog). Their
 * grant_queued_at is cleared in the same statement, so the relay enqueues them again.
 */
export function requeueUngrantedOrders(db: Db, graceMs: number, limit: number): Promise<UngrantedOrder[]> {
  return db<UngrantedOrder[]>`
    WITH gap AS (
      SELECT o.order_id FROM orders o
      WHERE o.status = 'paid' AND coalesce(o.paid_recorded_at, o.paid_at, o.created_at) <= now() - ${graceMs} * interval '1 millisecond'
        AND NOT EXISTS (SELECT 1 FROM processed_events p WHERE p.queue = 'grants' AND p.event_id = 'order-' || o.order_id)
      ORDER BY o.order_id LIMIT ${limit})
    UPDATE orders o SET grant_queued_at = NULL, paid_recorded_at = coalesce(o.paid_recorded_at, now())
    FROM gap WHERE o.order_id = gap.order_id
    RETURNING o.order_id, o.user_id, o.asset, o.amount, o.paid_recorded_at`;
}
