import type { AppContext } from '../context.ts';
import type { Sql } from '../db/client.ts';
import type { OrderRow } from '../ledger/sql/orders.ts';
import type { TallyProducer } from '../producers/index.ts';
import { markGrantsQueued, pendingOrderGrants } from './sql/order-grants.ts';

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

export const ORDER_GRANT_RELAY = {
  /** How often every worker process looks for paid orders whose grant is not in BullMQ yet. */
  everyMs: 2_000,
  /** Left to the callback's own enqueue first (a second enqueue would be harmless, only wasted). */
  graceMs: 1_000,
  /** Orders per sweep. */
  batch: 500,
  /** How long an enqueue may wait for Redis before the caller moves on (the intent stays; the relay retries). */
  enqueueWaitMs: 2_000,
};

/** Resolves true if `work` finished within `ms`, false if not (it goes on in the background; its failure is dropped). */
export async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const done = work.then(() => true, () => false);
  const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([done, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Enqueues the grants of these paid orders and stamps them queued. jobId = event_id and the durable
 * processed_events make any enqueue after the first a no-op, so this may run as often as it likes.
 */
export async function enqueueOrderGrants(sql: Sql, producer: TallyProducer, orders: OrderRow[]): Promise<void> {
  if (orders.length === 0) return;
  await producer.grantBulk(orders.map(orderGrant), { batch: false }); // jobId = order-…: one job per grant
  await markGrantsQueued(sql, orders.map((o) => o.order_id));
}

/** One sweep of the relay: the pending grants it handed to BullMQ (0 when Redis did not answer in time). */
export async function relayOrderGrants(sql: Sql, producer: TallyProducer): Promise<number> {
  const pending = await pendingOrderGrants(sql, ORDER_GRANT_RELAY.graceMs, ORDER_GRANT_RELAY.batch);
  if (pending.length === 0) return 0;
  return (await within(enqueueOrderGrants(sql, producer, pending), ORDER_GRANT_RELAY.enqueueWaitMs)) ? pending.length : 0;
}

/** The relay loop of a worker process: one sweep every ORDER_GRANT_RELAY.everyMs, never two at once. */
export async function startOrderGrantRelay(ctx: AppContext): Promise<{ close(): Promise<void> }> {
  const log = ctx.log.child({ role: 'worker', task: 'order-grant-relay' });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  let failing = false;
  const tick = () => {
    running = relayOrderGrants(ctx.sql, ctx.producer).then(
      (n) => {
        if (n > 0) log.info({ grants: n }, 'paid orders: grants enqueued by the relay');
        failing = false;
      },
      (err: unknown) => {
        if (!failing) log.warn({ err }, 'paid orders: relay sweep failed; retrying');
        failing = true;
      },
    );
    void running.then(() => {
      if (!stopped) timer = setTimeout(tick, ORDER_GRANT_RELAY.everyMs);
    });
  };
  timer = setTimeout(tick, ORDER_GRANT_RELAY.everyMs);
  return {
    async close() {
      stopped = true;
      clearTimeout(timer);
      await within(running, ORDER_GRANT_RELAY.enqueueWaitMs);
    },
  };
}
