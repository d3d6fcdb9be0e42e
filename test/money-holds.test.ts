import '../src/money/register.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

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

async function grant(user: string, amount: number) {
  return tally.producer.grant({ event_id: id('g'), user_id: user, asset: 'credits', amount, source: 'recharge' }, { wait: true }) as Promise<any>;
}
function hold(user: string, extra: Record<string, unknown> = {}) {
  return tally.http('POST', '/v1/holds', { event_id: id('h'), user_id: user, asset: 'credits', source_type: 'llm', ttl_seconds: 60, ...extra });
}
function settle(user: string, holdId: string, extra: Record<string, unknown> = {}) {
  return tally.producer.charge(
    { event_id: id('s'), user_id: user, asset: 'credits', source_type: 'llm', source_id: 'req-1', hold_id: holdId, ...extra } as never,
    { wait: true },
  ) as Promise<any>;
}
async function balance(user: string) {
  return (await tally.http('GET', `/v1/users/${user}/balances/credits`)).body;
}
// gpt-4o-mini: 1 per 1k input tokens, 4 per 1k output tokens, min 1.
const estimate = (output: number) => ({ model: 'gpt-4o-mini', input_tokens: 1000, output_tokens: output });

describe('holds', () => {
  it('200 concurrent holds racing for a balance that covers 50 → exactly 50 are placed', async () => {
    await grant('racer', 500);
    const results = await Promise.all(Array.from({ length: 200 }, () => hold('racer', { amount: 10 })));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(50);
    expect(statuses.filter((s) => s === 402)).toHaveLength(150);
    expect(results.find((r) => r.status === 402)!.body.error).toMatchObject({ code: 'insufficient', details: { required: 10, available: 0 } });
    expect(await balance('racer')).toMatchObject({ balance: 500, held: 500, available: 0 });
    // A guarded charge sees the holds too: nothing is available.
    const guarded = await tally.producer.charge(
      { event_id: id('c'), user_id: 'racer', asset: 'credits', source_type: 'llm', source_id: 'x', amount: 1, policy: 'guarded' },
      { wait: true },
    );
    expect(guarded).toMatchObject({ outcome: 'rejected_insufficient' });
  });

  it('holds and guarded charges racing together never exceed the balance', async () => {
    await grant('mixed', 100);
    const ops = Array.from({ length: 100 }, (_, i) =>
      i % 2 === 0
        ? hold('mixed', { amount: 2 }).then((r) => r.status === 201)
        : tally.producer
            .charge({ event_id: id('gc'), user_id: 'mixed', asset: 'credits', source_type: 'llm', source_id: 'x', amount: 2, policy: 'guarded' }, { wait: true })
            .then((r: any) => r.outcome === 'applied'),
    );
    const ok = await Promise.all(ops);
    expect(ok.filter(Boolean)).toHaveLength(50);
    const b = await balance('mixed');
    expect(b.balance - b.held).toBe(0);
    expect(b.available).toBe(0);
    await expectInvariants(world.sql);
  });

  it('reserves the max-cost estimate and shows it in the balance; the same event_id is the same hold', async () => {
    await grant('est', 100);
    const eventId = id('h');
    const body = { event_id: eventId, user_id: 'est', asset: 'credits', source_type: 'llm', usage_estimate: estimate(2250), ttl_seconds: 60 };
    const first = await tally.http('POST', '/v1/holds', body);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ hold_id: expect.stringMatching(/^h-/), amount: 10, status: 'active' });
    const again = await tally.http('POST', '/v1/holds', body);
    expect(again.body.hold_id).toBe(first.body.hold_id);
    const conflict = await tally.http('POST', '/v1/holds', { ...body, ttl_seconds: 30 });
    expect(conflict.status).toBe(409);
    expect(await balance('est')).toMatchObject({ balance: 100, held: 10, available: 90 });
    const unknownModel = await hold('est', { usage_estimate: { model: 'no-such-model', output_tokens: 5 } });
    expect(unknownModel.status).toBe(422);
    // A usage past the bounds a charge may report (USAGE_LIMITS) is bad input: 400, never a 500 from a bigint overflow.
    const huge = await tally.http('POST', '/v1/holds', { event_id: id('h'), user_id: 'est', asset: 'points', source_type: 'video', usage_estimate: { input_seconds: 1e17 }, ttl_seconds: 60 });
    expect(huge).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
  });

  it('settles lower: charges the actual cost and releases the rest', async () => {
    await grant('lower', 100);
    const h = await hold('lower', { usage_estimate: estimate(2250) });
    const r = await settle('lower', h.body.hold_id, { usage: estimate(500) });
    expect(r).toMatchObject({ outcome: 'applied', amount: 3, balance_before: 100, balance_after: 97, hold_id: h.body.hold_id, held: 10 });
    expect(await balance('lower')).toMatchObject({ balance: 97, held: 0, available: 97 });
    expect((await tally.http('GET', `/v1/holds/${h.body.hold_id}`)).body).toMatchObject({ status: 'settled', settled_amount: 3 });
  });

  it('settles higher: the excess over the hold is post-paid (may overdraw)', async () => {
    await grant('higher', 20);
    const h = await hold('higher', { usage_estimate: estimate(2250) });
    const r = await settle('higher', h.body.hold_id, { usage: estimate(10_000) });
    expect(r).toMatchObject({ outcome: 'applied', amount: 41, balance_after: -21 });
    expect(await balance('higher')).toMatchObject({ balance: -21, held: 0, overdrawn: true });
  });

  it('a stream that ended without final usage settles at the estimate', async () => {
    await grant('nousage', 50);
    const h = await hold('nousage', { usage_estimate: estimate(2250) });
    const r = await settle('nousage', h.body.hold_id);
    expect(r).toMatchObject({ outcome: 'applied', amount: 10, balance_after: 40 });
  });

  it('never settled: an expired hold stops counting at once, and the sweep marks it expired', async () => {
    await grant('never', 30);
    const h = await hold('never', { amount: 25, ttl_seconds: 1 });
    expect(h.status).toBe(201);
    expect(await balance('never')).toMatchObject({ held: 25, available: 5 });
    expect((await hold('never', { amount: 10 })).status).toBe(402);
    await world.clock.advance(1_001); // past the hold's expires_at, by the business clock
    expect(await balance('never')).toMatchObject({ balance: 30, held: 0, available: 30 });
    expect((await tally.http('GET', `/v1/holds/${h.body.hold_id}`)).body.status).toBe('expired');
    const sweep = await tally.http('POST', '/v1/admin/maintenance/expire', undefined, ADMIN_TOKEN);
    expect(sweep.body.holds_expired).toBeGreaterThanOrEqual(1);
    const [row] = await world.sql`SELECT status FROM holds WHERE hold_id = ${h.body.hold_id}`;
    expect(row!.status).toBe('expired');
    const txs = await tally.http('GET', '/v1/users/never/transactions');
    expect(txs.body.items.map((t: any) => t.kind)).toEqual(['grant']);
    // A late settle still charges the work that was done (post-paid), once.
    const late = await settle('never', h.body.hold_id, { amount: 4 });
    expect(late).toMatchObject({ outcome: 'applied', amount: 4, balance_after: 26 });
  });

  it('DELETE releases a hold; settling twice with different events fails unknown_hold; an unknown hold fails', async () => {
    await grant('rel', 40);
    const h = await hold('rel', { amount: 30 });
    expect((await balance('rel')).available).toBe(10);
    const del = await tally.http('DELETE', `/v1/holds/${h.body.hold_id}`);
    expect(del.body).toMatchObject({ status: 'released' });
    expect((await balance('rel')).available).toBe(40);
    expect((await tally.http('DELETE', '/v1/holds/h-nope')).status).toBe(404);

    const h2 = await hold('rel', { amount: 5 });
    await settle('rel', h2.body.hold_id, { amount: 5 });
    const twice = await settle('rel', h2.body.hold_id, { amount: 5 }).catch((e: Error) => e);
    expect(String((twice as Error).message)).toMatch(/^unknown_hold: .*already settled/);
    const unknown = await settle('rel', 'h-does-not-exist', { amount: 1 }).catch((e: Error) => e);
    expect(String((unknown as Error).message)).toMatch(/^unknown_hold/);
    const [dl] = await world.sql`SELECT reason_code FROM dead_letters WHERE reason LIKE '%h-does-not-exist%'`;
    expect(dl!.reason_code).toBe('unknown_hold');
    await expectInvariants(world.sql);
  });
});
