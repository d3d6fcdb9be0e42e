import type { Db } from '../../db/client.ts';

export interface OrderRow {
  order_id: string;
  user_id: string;
  sku: string;
  asset: string;
  amount: bigint;
  price_cents: bigint;
  status: 'pending' | 'paid';
  provider_ref: string | null;
  paid_at: Date | null;
  created_at: Date;
}

/**
 * A new pending order. With `order_id` (derived from an Idempotency-Key) the insert is idempotent: an order with
 * that id already there is returned as it is, so a request run again after a crash creates nothing new.
 */
export async function insertOrder(
  db: Db,
  o: { user_id: string; sku: string; asset: string; amount: bigint; price_cents: bigint; order_id?: string },
): Promise<OrderRow> {
  const [row] = await db<OrderRow[]>`
    INSERT INTO orders (order_id, user_id, sku, asset, amount, price_cents)
    VALUES (coalesce(${o.order_id ?? null}::text, 'o-' || replace(gen_random_uuid()::text, '-', '')), ${o.user_id}, ${o.sku}, ${o.asset},
      ${String(o.amount)}::bigint, ${String(o.price_cents)}::bigint)
    ON CONFLICT (order_id) DO NOTHING
    RETURNING *`;
  return row ?? (await findOrder(db, o.order_id!))!;
}

/** A user's orders, newest first, keyset-paginated after the order `after` (its created_at, then order_id). */
export async function listOrders(db: Db, userId: string, limit: number, after?: string): Promise<OrderRow[]> {
  return db<OrderRow[]>`
    SELECT * FROM orders
    WHERE user_id = ${userId}
      ${after === undefined ? db`` : db`AND (created_at, order_id) < (SELECT created_at, order_id FROM orders WHERE order_id = ${after})`}
    ORDER BY created_at DESC, order_id DESC
    LIMIT ${limit}`;
}

export async function findOrder(db: Db, orderId: string): Promise<OrderRow | undefined> {
  const [row] = await db<OrderRow[]>`SELECT * FROM orders WHERE order_id = ${orderId}`;
  return row;
}

