import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/modules.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;
const HOUR = 3600_000;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world, ['api', 'worker']);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

async function at(user: string, asset: string, instant: string) {
  const { data, error, response } = await tally.client.GET('/v1/users/{user_id}/balances/{asset}', { params: { path: { user_id: user, asset }, query: { at: instant } } });
  return { status: response.status, data: data as any, error: error as any };
}
const ms = (d: Date | string | number, delta = 0) => new Date(new Date(d).getTime() + delta).toISOString();

async function entries(user: string) {
  const { data } = await tally.client.GET('/v1/users/{user_id}/transactions', { params: { path: { user_id: user }, query: { limit: 500 } } });
  return data!.items.slice().reverse();
}

describe('GET …/balances/:asset?at= — the balance as of an instant', () => {
  it('counts an entry from the exact millisecond it shows; a batch stops counting at its expires_at whether or not the sweep wrote its expire entry', async () => {
    const t0 = await world.clock.set(new Date('2030-03-01T10:00:00.000Z'));
    const expiresAt = ms(t0, HOUR);
    await tally.producer.grant({ event_id: 'h-g1', user_id: 'hist', asset: 'points', amount: 50, source: 'gift', expires_at: expiresAt }, { wait: true });
    await world.clock.advance(10 * 60_000);
    await tally.producer.charge({ event_id: 'h-c1', user_id: 'hist', asset: 'points', source_type: 'script', source_id: 'x', amount: 20, policy: 'postpaid', occurred_at: (await world.clock.now()).toISOString() }, { wait: true });
    const [g, c] = await entries('hist');
    expect(g!.kind).toBe('grant');
    // The entry's own millisecond counts; the one before does not.
    expect((await at('hist', 'points', g!.created_at)).data).toMatchObject({ balance: 50, recorded_balance: 50, transaction_id: g!.transaction_id });
    expect((await at('hist', 'points', ms(g!.created_at, -1))).data).toMatchObject({ balance: 0, recorded_balance: 0, lapsed: 0, transaction_id: null });
    expect((await at('hist', 'points', c!.created_at)).data).toMatchObject({ balance: 30, transaction_id: c!.transaction_id });

    // Past the expiry, no sweep yet: exact and recorded differ from the expiry instant on.
    await world.clock.set(new Date(new Date(expiresAt).getTime() + 5 * 60_000));
    expect((await at('hist', 'points', ms(expiresAt, -1))).data).toMatchObject({ balance: 30, recorded_balance: 30, lapsed: 0 });
    // Finer than a millisecond: the instant is its millisecond (as echoed), not a point inside it that ends later.
    for (const sub of ['1', '999', '999999']) {
      expect((await at('hist', 'points', ms(expiresAt, -1).replace('Z', `${sub}Z`))).data, sub).toMatchObject({ at: ms(expiresAt, -1), balance: 30, lapsed: 0 });
    }
    expect((await at('hist', 'points', expiresAt)).data).toMatchObject({ balance: 0, recorded_balance: 30, lapsed: 30 });
    // `at` = now agrees with the plain read (exact at read time).
    const now = await world.clock.now();
    const plain = (await tally.client.GET('/v1/users/{user_id}/balances/{asset}', { params: { path: { user_id: 'hist', asset: 'points' } } })).data as any;
    expect(plain.balance).toBe(0);
    expect((await at('hist', 'points', now.toISOString())).data.balance).toBe(plain.balance);

    // The sweep writes the expire entry later than the expiry: history before it still knows the points had lapsed.
    await tally.admin.POST('/v1/admin/maintenance/{task}', { params: { path: { task: 'expire' } } });
    const all = await entries('hist');
    const expire = all.at(-1)!;
    expect(expire.kind).toBe('expire');
    expect(Date.parse(expire.created_at)).toBeGreaterThan(Date.parse(expiresAt));
    expect((await at('hist', 'points', expiresAt)).data).toMatchObject({ balance: 0, recorded_balance: 30, lapsed: 30 });
    expect((await at('hist', 'points', ms(expire.created_at, -1))).data).toMatchObject({ balance: 0, recorded_balance: 30 });
    expect((await at('hist', 'points', expire.created_at)).data).toMatchObject({ balance: 0, recorded_balance: 0, lapsed: 0, transaction_id: expire.transaction_id });
  });

  it('a later transaction expires what lapsed before it charges: history splits the two at the expiry', async () => {
    const t0 = await world.clock.set(new Date('2031-01-01T00:00:00.000Z'));
    const expiresAt = ms(t0, HOUR);
    await tally.producer.grant({ event_id: 'h2-g1', user_id: 'hist2', asset: 'points', amount: 40, source: 'gift', expires_at: expiresAt }, { wait: true });
    await tally.producer.grant({ event_id: 'h2-g2', user_id: 'hist2', asset: 'points', amount: 10, source: 'gift', expires_at: null }, { wait: true });
    await world.clock.set(new Date(Date.parse(expiresAt) + HOUR));
    await tally.producer.charge({ event_id: 'h2-c', user_id: 'hist2', asset: 'points', source_type: 'script', source_id: 'x', amount: 15, policy: 'postpaid', occurred_at: (await world.clock.now()).toISOString() }, { wait: true });
    const list = await entries('hist2');
    expect(list.map((e) => e.kind)).toEqual(['grant', 'grant', 'expire', 'consume']);
    expect((await at('hist2', 'points', ms(expiresAt, -1))).data).toMatchObject({ balance: 50, recorded_balance: 50 });
    expect((await at('hist2', 'points', ms(expiresAt, 30 * 60_000))).data).toMatchObject({ balance: 10, recorded_balance: 50, lapsed: 40 });
    expect((await at('hist2', 'points', list[3]!.created_at)).data).toMatchObject({ balance: -5, recorded_balance: -5, lapsed: 0 });
  });

  it('an account never seen reads zeros at any instant; malformed or out-of-range instants are 400, never 500', async () => {
    expect((await at('nobody', 'points', '2020-01-01T00:00:00Z')).data).toMatchObject({ balance: 0, recorded_balance: 0, transaction_id: null });
    expect((await at('hist', 'points', '0001-01-01T00:00:00Z')).data).toMatchObject({ balance: 0, transaction_id: null });
    for (const bad of ['0000-01-01T00:00:00Z', 'yesterday', '2026-02-30T00:00:00Z', '2026-01-01T00:00:00', '+010000-01-01T00:00:00Z', '9999-12-31T23:59:59Z', '']) {
      const res = await tally.http('GET', `/v1/users/hist/balances/points?at=${encodeURIComponent(bad)}`);
      expect(res.status, bad).toBe(400);
      expect(['invalid_request', 'invalid_range']).toContain(res.body.error.code);
    }
  });

  it('transactions: from (inclusive) and to (exclusive) bound created_at to the millisecond; from > to is 400; 10k-year ranges are fine', async () => {
    const list = await entries('hist2');
    const page = async (from?: string, to?: string) =>
      (await tally.client.GET('/v1/users/{user_id}/transactions', { params: { path: { user_id: 'hist2' }, query: { from, to, limit: 500 } } })).data!.items.map((e) => e.transaction_id);
    const ids = list.map((e) => e.transaction_id).reverse();
    expect(await page(list[2]!.created_at)).toEqual(ids.slice(0, 2)); // the expire and the consume share their transaction's clock
    expect(await page(undefined, list[2]!.created_at)).toEqual(ids.slice(2));
    expect(await page(list[1]!.created_at, ms(list[1]!.created_at, 1))).toEqual([list[1]!.transaction_id]);
    expect(await page('0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z')).toEqual(ids);
    const res = await tally.http('GET', `/v1/users/hist2/transactions?from=${encodeURIComponent('2031-01-02T00:00:00Z')}&to=${encodeURIComponent('2031-01-01T00:00:00Z')}`);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_range');
    expect((await tally.http('GET', '/v1/users/hist2/transactions?limit=100000000000000000000')).status).toBe(400);
  });

  it('a statement reconciles for any range: opening + Σ amounts = closing, and each entry continues the one before', async () => {
    const user = 'hist3';
    await world.clock.set(new Date('2032-06-01T00:00:00.000Z'));
    for (let i = 0; i < 12; i++) {
      await tally.producer.grant({ event_id: `h3-g${i}`, user_id: user, asset: 'points', amount: 5 + i, source: 'gift', expires_at: i % 3 === 0 ? ms(await world.clock.now(), 90 * 60_000) : null }, { wait: true });
      await tally.producer.charge({ event_id: `h3-c${i}`, user_id: user, asset: 'points', source_type: 'script', source_id: 'x', amount: 7, policy: 'postpaid', occurred_at: (await world.clock.now()).toISOString() }, { wait: true });
      await world.clock.advance(20 * 60_000);
    }
    const list = await entries(user);
    const first = Date.parse(list[0]!.created_at);
    const last = Date.parse(list.at(-1)!.created_at);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: first - HOUR, max: last + HOUR }), fc.integer({ min: 0, max: 6 * HOUR }), async (from: number, span: number) => {
        const res = await fetch(`${tally.base}/v1/users/${user}/statement?asset=points&from=${ms(from)}&to=${ms(from + span)}`, { headers: { authorization: `Bearer test-api-token-0123456789` } });
        const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
        const opening = lines[0];
        const closing = lines.at(-1);
        const rows = lines.slice(1, -1);
        expect(opening.type).toBe('opening');
        expect(closing.type).toBe('closing');
        expect(closing.entries).toBe(rows.length);
        let running = opening.recorded_balance;
        for (const r of rows) {
          expect(r.balance_before).toBe(running);
          running = r.balance_after;
          const t = Date.parse(r.created_at);
          expect(t >= from && t < from + span).toBe(true);
        }
        expect(running).toBe(closing.recorded_balance);
        // The closing state is the balance as of the end of the range (never past now): what ?at= says of it.
        expect(Date.parse(closing.at)).toBeLessThanOrEqual(from + span);
        const atTo = (await at(user, 'points', ms(closing.at, -1))).data;
        expect(closing.balance).toBe(atTo.balance);
        expect(closing.recorded_balance).toBe(atTo.recorded_balance);
      }),
      { numRuns: 25 },
    );
  });
});
