import type { Sql } from '../db/client.ts';
import type { Violation } from '../maintenance/reconcile.ts';
import { requeueUngrantedOrders } from './sql/order-grants.ts';

/** How long a paid order may wait for its grant before reconcile calls it a gap (queues can lag under a backlog). */
export const ORDER_GRANT_GRACE_MS = 10 * 60_000;

/**
 * Every paid order has its grant `order-{order_id}` applied. A gap (the job lost with a Redis that restarted without
 * AOF, or refused, or an order paid more than ORDER_GRANT_GRACE_MS ago still waiting) is reported, and repaired:
 * the order's grant is marked pending again, so the order-grant relay enqueues it (a no-op if the job still exists).
 */
export async function paidOrderGrantViolations(sql: Sql): Promise<Violation[]> {
  const gaps = await requeueUngrantedOrders(sql, ORDER_GRANT_GRACE_MS, 1000);
  return gaps.map((o) => ({
    check: 'paid_order_granted',
    user_id: o.user_id,
    asset: o.asset,
    expected: `grant order-${o.order_id} of ${o.amount} applied`,
    actual: `not applied ${Math.round((Date.now() - o.paid_recorded_at.getTime()) / 1000)} s after payment; re-queued`,
  }));
}
