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

export async function insertOrder(db: Db, o: { user_id: string; sku: string; asset: string; amount: bigint; price_cents: bigint }): Promise<OrderRow> {
  const [row] = await db<OrderRow[]>`
    INSERT INTO orders (order_id, user_id, sku, asset, amount, price_cents)
    VALUES ('o-' || replace(gen_random_uuid()::text, '-', ''), ${o.user_id}, ${o.sku}, ${o.asset}, ${String(o.amount)}::bigint, ${String(o.price_cents)}::bigint)
    RETURNING *`;
  return row!;
}

export async function findOrder(db: Db, orderId: string): Promise<OrderRow | undefined> {
  const [row] = await db<OrderRow[]>`SELECT * FROM orders WHERE order_id = ${orderId}`;
  return row;
}

/** pending → paid, once; returns the order as it is afterwards (and whether this call paid it). */
export async function markOrderPaid(db: Db, orderId: string, providerRef: string, paidAt: string): Promise<{ order: OrderRow; first: boolean } | undefined> {
  const [paid] = await db<OrderRow[]>`
    UPDATE orders SET status = 'paid', provider_ref = ${providerRef}, paid_at = ${paidAt}::timestamptz
    WHERE order_id = ${orderId} AND status = 'pending' RETURNING *`;
  if (paid) return { order: paid, first: true };
  const order = await findOrder(db, orderId);
  return order ? { order, first: false } : undefined;
}
