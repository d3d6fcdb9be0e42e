import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/modules.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;
const DAY = 86_400_000;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world, ['api', 'worker']);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

type Adjust = { event_id: string; user_id: string; asset: string; amount: number; reason: string; operator_id: string };
const adjust = (b: Adjust) => tally.admin.POST('/v1/admin/ledger/adjust', { body: b });
const body = (event_id: string, amount: number, user = 'adj', asset = 'points'): Adjust => ({ event_id, user_id: user, asset, amount, reason: `ticket ${event_id}`, operator_id: 'op-7' });

async function reconcile() {
  const { data } = await tally.admin.POST('/v1/admin/maintenance/{task}', { params: { path: { task: 'reconcile' } } });
  return data as unknown as { ok: boolean; violations: unknown[] };
}

describe('POST /v1/admin/ledger/adjust', () => {
  it('positive: an adjust entry with operator and reason, a batch with the asset\'s default expiry; the result as for a charge', async () => {
    const now = await world.clock.now();
    const { data, response } = await adjust(body('a-1', 40));
    expect(response.status).toBe(200);
    expect(data).toMatchObject({ event_id: 'a-1', outcome: 'applied', amount: 40, balance_before: 0, balance_after: 40 });
    const tx = (await tally.client.GET('/v1/users/{user_id}/transactions', { params: { path: { user_id: 'adj' } } })).data!.items[0]!;
    expect(tx).toMatchObject({ transaction_id: data!.transaction_id, event_id: 'a-1', kind: 'adjust', amount: 40, source_type: 'operator', source_id: 'op-7', description: 'ticket a-1' });
    const batch = (await tally.client.GET('/v1/users/{user_id}/batches', { params: { path: { user_id: 'adj' } } })).data!.items[0]!;
    expect(batch.source).toBe('adjust');
    expect(Math.abs(Date.parse(batch.expires_at!) - (now.getTime() + 180 * DAY))).toBeLessThan(60_000);
    const bal = (await tally.client.GET('/v1/users/{user_id}/balances/{asset}', { params: { path: { user_id: 'adj', asset: 'points' } } })).data as any;
    expect(bal).toMatchObject({ balance: 40, total_granted: 40 });
  });

  it('negative: burns like a post-paid charge (soonest expiry first), may overdraw into a traced debt that the next grant pays', async () => {
    await tally.producer.grant({ event_id: 'n-g1', user_id: 'neg', asset: 'points', amount: 10, source: 'gift', expires_at: new Date(Date.now() + 2 * DAY).toISOString() }, { wait: true });
    await tally.producer.grant({ event_id: 'n-g2', user_id: 'neg', asset: 'points', amount: 10, source: 'gift', expires_at: null }, { wait: true });
    const { data } = await adjust(body('n-a', -25, 'neg'));
    expect(data).toMatchObject({ outcome: 'applied', amount: -25, balance_before: 20, balance_after: -5 });
    const tx = (await tally.client.GET('/v1/users/{user_id}/transactions', { params: { path: { user_id: 'neg' } } })).data!.items[0]!;
    expect(tx.kind).toBe('adjust');
    expect(tx.batches.map((b) => b.amount)).toEqual([10, 10]);
    const bal = (await tally.client.GET('/v1/users/{user_id}/balances/{asset}', { params: { path: { user_id: 'neg', asset: 'points' } } })).data as any;
    expect(bal).toMatchObject({ balance: -5, overdrawn: true, total_consumed: 25 });
    await tally.producer.grant({ event_id: 'n-g3', user_id: 'neg', asset: 'points', amount: 8, source: 'gift' }, { wait: true });
    const after = (await tally.client.GET('/v1/users/{user_id}/balances/{asset}', { params: { path: { user_id: 'neg', asset: 'points' } } })).data as any;
    expect(after).toMatchObject({ balance: 3, overdrawn: false });
    expect(await reconcile()).toMatchObject({ ok: true, violations: [] });
  });

  it('exactly once by event_id: a replay answers noop_duplicate with the original result; another body is 409', async () => {
    const first = await adjust(body('once', 7, 'once'));
    const again = await adjust(body('once', 7, 'once'));
    expect(again.data).toMatchObject({ outcome: 'noop_duplicate', original_outcome: 'applied', transaction_id: first.data!.transaction_id, balance_after: 7 });
    const other = await adjust(body('once', 8, 'once'));
    expect(other.response.status).toBe(409);
    expect((other.error as any).error.code).toBe('idempotency_conflict');
    const bal = (await tally.client.GET('/v1/users/{user_id}/balances/{asset}', { params: { path: { user_id: 'once', asset: 'points' } } })).data as any;
    expect(bal.balance).toBe(7);
  });

  it('refusals: 0, a fraction, past 2^53 − 1 → 400; an unknown asset or a balance past 2^53 − 1 → 422; the API token → 403', async () => {
    for (const amount of [0, 1.5, 2 ** 53, -(2 ** 53)]) {
      const res = await tally.http('POST', '/v1/admin/ledger/adjust', body(`bad-${amount}`, amount), 'test-admin-token-0123456789');
      expect(res.status, String(amount)).toBe(400);
    }
    const gold = await adjust(body('gold', 5, 'adj', 'gold'));
    expect(gold.response.status).toBe(422);
    expect((gold.error as any).error.code).toBe('invalid_payload');
    await adjust(body('max-1', Number.MAX_SAFE_INTEGER, 'maxed', 'credits'));
    const over = await adjust(body('max-2', 1, 'maxed', 'credits'));
    expect(over.response.status).toBe(422);
    const api = await tally.client.POST('/v1/admin/ledger/adjust', { body: body('api', 1) });
    expect(api.response.status).toBe(403);
  });

  it('adjusts racing charges and grants from the workers on one account keep every reconcile invariant', async () => {
    const jobs: Promise<unknown>[] = [];
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      jobs.push(tally.producer.grant({ event_id: `r-g${i}`, user_id: 'race', asset: 'points', amount: 5, source: 'gift', expires_at: i % 2 ? null : new Date(Date.now() + DAY).toISOString() }, { wait: true }));
      jobs.push(tally.producer.charge({ event_id: `r-c${i}`, user_id: 'race', asset: 'points', source_type: 'script', source_id: 's', amount: 4, policy: 'postpaid' }, { wait: true }));
      jobs.push(adjust(body(`r-a${i}`, i % 3 === 0 ? -6 : 3, 'race')).then((r) => statuses.push(r.response.status)));
    }
    await Promise.all(jobs);
    // A lock another transaction holds (the account being created concurrently) is a passing fault: retried, never a 500.
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const bal = (await tally.client.GET('/v1/users/{user_id}/balances/{asset}', { params: { path: { user_id: 'race', asset: 'points' } } })).data as any;
    expect(bal.balance).toBe(30 * 5 - 30 * 4 + 20 * 3 - 10 * 6);
    expect(await reconcile()).toMatchObject({ ok: true, violations: [] });
  });
});
