import '../src/money/register.ts';
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReconcile } from '../src/maintenance/reconcile.ts';
import { PAYMENT_SECRET, createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { startProxy, type FaultProxy } from './helpers/proxy.ts';
import { startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

/**
 * Issue 10 item 9 and issue 9 item 8: a paid order's grant is durable with its paid mark — it survives Redis being
 * down during the callback, and reconcile finds and repairs a paid order whose grant never got applied. The
 * callback ignores fields it does not know, and refuses (409) an amount or a payment time the order contradicts.
 */
let world: TestWorld;
let proxy: FaultProxy;
let tally: InProcessTally;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  // This tally reaches Redis through a proxy the test can cut.
  proxy = await startProxy(6379);
  tally = await startTally(world, ['api', 'worker', 'scheduler'], { REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
});
afterAll(async () => {
  await proxy?.restore().catch(() => {});
  await tally?.stop();
  await proxy?.close();
  await world?.drop();
});

async function paid(base: string, orderId: string, body: Record<string, unknown>, timeoutMs = 15_000) {
  const raw = JSON.stringify(body);
  const signature = createHmac('sha256', PAYMENT_SECRET).update(raw).digest('hex');
  const t0 = Date.now();
  const res = await fetch(`${base}/v1/orders/${orderId}/paid`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-tally-signature': signature },
    body: raw,
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, body: (await res.json()) as any, ms: Date.now() - t0 };
}
const callback = (orderId: string, extra: Record<string, unknown> = {}) => ({ order_id: orderId, status: 'paid', provider_ref: 'pay-1', paid_at: new Date().toISOString(), ...extra });
async function order(user: string): Promise<string> {
  const o = await tally.http('POST', '/v1/orders', { user_id: user, sku: 'credits-1000' });
  expect(o.status).toBe(201);
  return o.body.order_id;
}
async function credits(user: string): Promise<number> {
  const [row] = await world.sql<{ n: bigint }[]>`SELECT coalesce(sum(amount), 0)::bigint AS n FROM ledger_entries WHERE user_id = ${user} AND asset = 'credits'`;
  return Number(row!.n);
}

describe('the payment callback', () => {
  it('ignores fields it does not know', async () => {
    const id = await order('extra');
    const r = await paid(tally.base, id, callback(id, { currency: 'USD', fee_cents: 29, provider: { name: 'acme', risk: { score: 3 } }, amount_cents: 990 }));
    expect(r).toMatchObject({ status: 200, body: { status: 'paid' } });
    await waitFor('the grant', async () => (await credits('extra')) === 1000);
  });

  it('answers 409 amount_mismatch when amount_cents differs from the order, and grants nothing', async () => {
    const id = await order('mismatch');
    for (const amount of [989, 99_000, '1', 0]) {
      const r = await paid(tally.base, id, callback(id, { amount_cents: amount }));
      expect(r, String(amount)).toMatchObject({ status: 409, body: { error: { code: 'amount_mismatch' } } });
    }
    expect((await tally.http('GET', `/v1/orders/${id}`)).body.status).toBe('pending');
    const ok = await paid(tally.base, id, callback(id, { amount_cents: '990' })); // a string of digits is fine too
    expect(ok.status).toBe(200);
    // A later callback that contradicts the (now paid) order is refused too, and changes nothing.
    expect((await paid(tally.base, id, callback(id, { amount_cents: 1 }))).status).toBe(409);
    await waitFor('the grant', async () => (await credits('mismatch')) === 1000);
    expect((await paid(tally.base, id, callback(id, { amount_cents: 'ten' }))).status).toBe(400);
  });

  it('honours a signed paid_at before the order existed (the provider clock behind ours): granted once, paid_at kept as sent', async () => {
    const id = await order('early');
    const [row] = await world.sql<{ created_at: Date }[]>`SELECT created_at FROM orders WHERE order_id = ${id}`;
    const before = new Date(row!.created_at.getTime() - 60_000).toISOString();
    const r = await paid(tally.base, id, callback(id, { paid_at: before }));
    expect(r).toMatchObject({ status: 200, body: { status: 'paid' } });
    await waitFor('the grant', async () => (await credits('early')) === 1000);
    const [o] = await world.sql<{ paid_at: Date }[]>`SELECT paid_at FROM orders WHERE order_id = ${id}`;
    expect(o!.paid_at.toISOString()).toBe(before);
  });
});

describe('a paid order always gets its grant', () => {
  it('Redis cut off during the callback: the callback still answers, and the grant is applied once Redis is back', async () => {
    const id = await order('outage');
    await proxy.cut();
    let r: Awaited<ReturnType<typeof paid>>;
    try {
      r = await paid(tally.base, id, callback(id), 12_000);
      expect(r).toMatchObject({ status: 200, body: { status: 'paid' } });
      expect(r.ms).toBeLessThan(8_000); // before: it waited for Redis, as long as the outage lasted
      const [o] = await world.sql`SELECT status, grant_queued_at FROM orders WHERE order_id = ${id}`;
      expect(o).toEqual({ status: 'paid', grant_queued_at: null }); // the intent is durable with the paid mark
    } finally {
      await proxy.restore();
    }
    await waitFor('the grant after the outage', async () => (await credits('outage')) === 1000, 45_000, 200);
    await waitFor('the grant stamped queued', async () => {
      const [o] = await world.sql`SELECT grant_queued_at FROM orders WHERE order_id = ${id}`;
      return o!.grant_queued_at !== null;
    });
    const [entries] = await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM ledger_entries WHERE event_id = ${`order-${id}`}`;
    expect(entries!.n).toBe(1);
    await expectInvariants(world.sql);
  }, 90_000);

  it('reconcile finds a paid order whose grant was lost, re-queues it, and is clean once it is applied', async () => {
    // No worker for now, only an api: the grant is enqueued, but nothing applies it...
    await tally.stop();
    const api = await startTally(world, ['api']);
    let id: string;
    try {
      const o = await api.http('POST', '/v1/orders', { user_id: 'lost', sku: 'credits-1000' });
      id = o.body.order_id;
      expect((await paid(api.base, id, callback(id))).status).toBe(200);
      // ...and is lost before one does (a Redis that restarted without AOF).
      expect(await api.producer.queue('grants').getJob(`order-${id}`)).toBeTruthy();
      await api.producer.queue('grants').remove(`order-${id}`);
    } finally {
      await api.stop();
    }
    const [o] = await world.sql`SELECT grant_queued_at FROM orders WHERE order_id = ${id}`;
    expect(o!.grant_queued_at).not.toBeNull(); // it had been handed to BullMQ: only reconcile can tell it is gone
    // Within the grace period a pending grant is not a gap; an hour after payment it is.
    expect((await runReconcile(world.sql)).violations.filter((v) => v.check === 'paid_order_granted')).toEqual([]);
    await world.sql`UPDATE orders SET paid_recorded_at = now() - interval '1 hour' WHERE order_id = ${id}`;
    const found = await runReconcile(world.sql);
    expect(found.violations).toEqual([
      expect.objectContaining({ check: 'paid_order_granted', user_id: 'lost', asset: 'credits', expected: `grant order-${id} of 1000 applied` }),
    ]);
    // Repaired: the relay of a worker enqueues it again.
    tally = await startTally(world, ['worker']);
    await waitFor('the re-queued grant', async () => (await credits('lost')) === 1000, 30_000, 200);
    const clean = await runReconcile(world.sql);
    expect(clean.violations).toEqual([]);
  }, 90_000);
});
