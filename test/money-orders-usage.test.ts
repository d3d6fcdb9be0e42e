import '../src/money/register.ts';
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageMeter } from '../src/producers/usage-meter.ts';
import { PAYMENT_SECRET, createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;
let n = 0;
const id = (p: string) => `${p}-${++n}-${Date.now().toString(36)}`;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

async function paid(orderId: string, body: Record<string, unknown>, signature: string | null = 'valid') {
  const raw = JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (signature === 'valid') headers['x-tally-signature'] = createHmac('sha256', PAYMENT_SECRET).update(raw).digest('hex');
  else if (signature !== null) headers['x-tally-signature'] = signature;
  const res = await fetch(`${tally.base}/v1/orders/${orderId}/paid`, { method: 'POST', headers, body: raw });
  return { status: res.status, body: (await res.json()) as any };
}
async function balance(user: string, asset = 'credits') {
  return (await tally.http('GET', `/v1/users/${user}/balances/${asset}`)).body;
}
const callback = (orderId: string) => ({ order_id: orderId, status: 'paid', provider_ref: 'pay-123', paid_at: new Date().toISOString() });

describe('orders', () => {
  it('creates a pending order priced from the config; unknown skus are 422', async () => {
    const o = await tally.http('POST', '/v1/orders', { user_id: 'buyer', sku: 'credits-1000' });
    expect(o.status).toBe(201);
    expect(o.body).toMatchObject({ order_id: expect.stringMatching(/^o-/), status: 'pending', sku: 'credits-1000', asset: 'credits', amount: 1000, price_cents: 990 });
    expect((await tally.http('POST', '/v1/orders', { user_id: 'buyer', sku: 'nope' })).status).toBe(422);
    expect((await tally.http('POST', '/v1/orders', { user_id: 'buyer', sku: 'credits-1000' }, null)).status).toBe(401);
  });

  it('a payment callback with a bad or missing signature is 401 and grants nothing', async () => {
    const o = await tally.http('POST', '/v1/orders', { user_id: 'mallory', sku: 'credits-1000' });
    const forged = await paid(o.body.order_id, callback(o.body.order_id), createHmac('sha256', 'not-the-secret-000000').update('x').digest('hex'));
    expect(forged.status).toBe(401);
    expect((await paid(o.body.order_id, callback(o.body.order_id), null)).status).toBe(401);
    // Signed over a different body than the one sent.
    const tampered = await paid(o.body.order_id, { ...callback(o.body.order_id), provider_ref: 'x' }, createHmac('sha256', PAYMENT_SECRET).update('{}').digest('hex'));
    expect(tampered.status).toBe(401);
    expect((await tally.http('GET', `/v1/orders/${o.body.order_id}`)).body.status).toBe('pending');
    await new Promise((r) => setTimeout(r, 200));
    expect(await balance('mallory')).toMatchObject({ balance: 0, total_granted: 0 });
  });

  it('paid twice → one grant, with event_id order-{order_id}', async () => {
    const o = await tally.http('POST', '/v1/orders', { user_id: 'payer', sku: 'credits-1000' });
    const orderId = o.body.order_id;
    const first = await paid(orderId, callback(orderId));
    expect(first).toMatchObject({ status: 200, body: { status: 'paid', order_id: orderId } });
    const second = await paid(orderId, callback(orderId));
    expect(second).toMatchObject({ status: 200, body: { status: 'paid' } });
    await waitFor('the grant', async () => (await balance('payer')).balance === 1000);
    // Even once the BullMQ job is gone, a late callback grants nothing (the durable dedupe answers).
    await tally.producer.queue('grants').remove(`order-${orderId}`);
    await paid(orderId, callback(orderId));
    await waitFor('the replay', async () => {
      const [row] = await world.sql`SELECT count(*)::int AS n FROM processed_events WHERE event_id = ${`order-${orderId}`}`;
      const job = await tally.producer.queue('grants').getJob(`order-${orderId}`);
      return row!.n === 1 && job && (await job.getState()) === 'completed';
    });
    const txs = await tally.http('GET', '/v1/users/payer/transactions');
    expect(txs.body.items).toHaveLength(1);
    expect(txs.body.items[0]).toMatchObject({ kind: 'grant', amount: 1000, event_id: `order-${orderId}`, source_type: 'purchase' });
    expect((await tally.http('GET', `/v1/orders/${orderId}`)).body).toMatchObject({ status: 'paid', provider_ref: 'pay-123' });
  });

  it('a crash between recording paid and enqueueing the grant is healed by the next callback', async () => {
    const o = await tally.http('POST', '/v1/orders', { user_id: 'crashy', sku: 'credits-1000' });
    await world.sql`UPDATE orders SET status = 'paid', paid_at = now() WHERE order_id = ${o.body.order_id}`;
    expect((await paid(o.body.order_id, callback(o.body.order_id))).status).toBe(200);
    await waitFor('the grant', async () => (await balance('crashy')).balance === 1000);
    await expectInvariants(world.sql);
  });
});

describe('usage dashboard', () => {
  const HOUR = 3_600_000;
  async function use(user: string, amount: number, at: number, model = 'gpt-4o-mini', sourceType = 'llm') {
    const eventId = id('u');
    await tally.producer.charge(
      {
        event_id: eventId, user_id: user, asset: 'credits', source_type: sourceType, source_id: 'r', amount, policy: 'postpaid',
        usage: { model, input_tokens: 100, output_tokens: 10 }, occurred_at: new Date(at).toISOString(),
      },
      { wait: true },
    );
    return eventId;
  }

  it('rolling windows by occurred_at, across the timezone day boundary, net of refunds', async () => {
    const now = Date.now();
    // The last Asia/Shanghai midnight (16:00 UTC) at least a minute ago and at most 23h58m ago.
    let midnight = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate(), 16);
    while (midnight > now - 60_000) midnight -= 86_400_000;
    const margin = Math.min(30_000, (now - midnight) / 2, (24 * HOUR - (now - midnight)) / 2);
    await use('dash', 1, midnight - margin); // yesterday in Shanghai, within 24h
    await use('dash', 2, midnight + margin); // today in Shanghai
    await use('dash', 128, now - 24 * HOUR + 60_000); // the window's partial first hour: read from the ledger
    await use('dash', 256, now - 24 * HOUR - 60_000); // just outside 24h
    await use('dash', 4, now - 25 * HOUR, 'gpt-4o');
    await use('dash', 8, now - 6 * 24 * HOUR, 'gpt-4o', 'tts');
    const refunded = await use('dash', 16, now - 20 * 24 * HOUR);
    await use('dash', 32, now - 40 * 24 * HOUR);
    await tally.producer.refund({ event_id: id('rf'), charge_event_id: refunded, amount: 6 }, { wait: true });
    await use('other', 64, now - HOUR);

    const get = async (window: string) => (await tally.http('GET', `/v1/users/dash/usage?window=${window}`)).body;
    const day = await get('24h');
    expect(day).toMatchObject({ window: '24h', total: 131, count: 3, tokens: { input: 300, output: 30 } });
    expect(day.by_source_type).toEqual([{ source_type: 'llm', amount: 131, count: 3, input_tokens: 300, output_tokens: 30 }]);
    expect(day.by_model).toEqual([{ model: 'gpt-4o-mini', amount: 131, count: 3, input_tokens: 300, output_tokens: 30 }]);
    expect((await get('7d')).total).toBe(399);
    const month = await get('30d');
    expect(month).toMatchObject({ total: 409, count: 7 });
    expect(month.by_source_type.map((s: any) => [s.source_type, s.amount, s.count])).toEqual([['llm', 401, 6], ['tts', 8, 1]]);
    expect(month.by_model.map((s: any) => [s.model, s.amount])).toEqual([['gpt-4o-mini', 397], ['gpt-4o', 12]]);
    expect((await get('all')).total).toBe(441);
    await expectInvariants(world.sql); // includes: the hourly rollup equals the ledger
    expect((await tally.http('GET', '/v1/users/dash/usage?window=1y')).status).toBe(400);
    expect((await tally.http('GET', '/v1/users/nobody/usage?window=all')).body).toMatchObject({ total: 0, by_source_type: [] });
  });

  it('the partial first hour of a window reads the partial index, not the whole ledger', async () => {
    await world.sql`ANALYZE ledger_entries`;
    const plan = await world.sql.unsafe(`SET enable_seqscan = off; EXPLAIN SELECT source_type, sum(amount) FROM ledger_entries
      WHERE user_id = 'dash' AND kind IN ('consume', 'refund') AND occurred_at >= now() - interval '1 day' AND occurred_at < now() GROUP BY source_type`);
    expect(JSON.stringify(plan)).toMatch(/ledger_entries_usage/);
  });
});

describe('UsageMeter', () => {
  it('sums a stream\'s chunks and emits exactly one charge that settles the hold', async () => {
    await tally.producer.grant({ event_id: id('g'), user_id: 'streamer', asset: 'credits', amount: 100, source: 'recharge' }, { wait: true });
    const h = await tally.http('POST', '/v1/holds', {
      event_id: id('h'), user_id: 'streamer', asset: 'credits', source_type: 'llm', ttl_seconds: 60,
      usage_estimate: { model: 'gpt-4o-mini', input_tokens: 1000, output_tokens: 4000 },
    });
    expect(h.body.amount).toBe(17);
    const meter = new UsageMeter(tally.producer, { event_id: id('llm'), user_id: 'streamer', asset: 'credits', source_type: 'llm', source_id: 'req-9', hold_id: h.body.hold_id, model: 'gpt-4o-mini' }, { wait: true });
    meter.add({ input_tokens: 1000 });
    for (let i = 0; i < 10; i++) meter.add({ output_tokens: 100 });
    const [a, b] = await Promise.all([meter.end(), meter.abort()]);
    expect(a).toBe(b);
    expect(a).toMatchObject({ outcome: 'applied', amount: 5, hold_id: h.body.hold_id, balance_after: 95 });
    expect(await balance('streamer')).toMatchObject({ balance: 95, held: 0 });
    const charges = (await tally.http('GET', '/v1/users/streamer/transactions')).body.items.filter((t: any) => t.kind === 'consume');
    expect(charges).toHaveLength(1);
    expect(charges[0].usage).toEqual({ model: 'gpt-4o-mini', input_tokens: 1000, output_tokens: 1000 });
  });

  it('on abort charges what was counted so far; a stream with no usage report settles at the estimate', async () => {
    await tally.producer.grant({ event_id: id('g'), user_id: 'cut', asset: 'credits', amount: 100, source: 'recharge' }, { wait: true });
    const aborted = new UsageMeter(tally.producer, { event_id: id('llm'), user_id: 'cut', asset: 'credits', source_type: 'llm', source_id: 'q', policy: 'postpaid', model: 'gpt-4o-mini' }, { wait: true });
    aborted.add({ input_tokens: 2000, output_tokens: 500 });
    expect(await aborted.abort()).toMatchObject({ outcome: 'applied', amount: 4 });
    aborted.add({ output_tokens: 100_000 }); // after the charge: ignored
    expect(aborted.counted.output_tokens).toBe(500);

    const h = await tally.http('POST', '/v1/holds', { event_id: id('h'), user_id: 'cut', asset: 'credits', source_type: 'llm', ttl_seconds: 60, amount: 7 });
    const silent = new UsageMeter(tally.producer, { event_id: id('llm'), user_id: 'cut', asset: 'credits', source_type: 'llm', source_id: 'q2', hold_id: h.body.hold_id, model: 'gpt-4o-mini' }, { wait: true });
    expect(await silent.end()).toMatchObject({ outcome: 'applied', amount: 7, balance_after: 89 });
  });
});
