import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorld, type TestWorld } from './helpers/env.ts';
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

async function grant(user: string, amount: number, extra: Record<string, unknown> = {}) {
  return tally.producer.grant({ event_id: id('g'), user_id: user, asset: 'points', amount, source: 'recharge', ...extra }, { wait: true }) as Promise<any>;
}
async function charge(user: string, extra: Record<string, unknown>) {
  return tally.producer.charge(
    { event_id: id('c'), user_id: user, asset: 'points', source_type: 'script', source_id: 's1', policy: 'postpaid', ...extra } as never,
    { wait: true },
  ) as Promise<any>;
}

describe('grants and charges through the real queues', () => {
  it('grant → charge → balance, transactions and batches over HTTP', async () => {
    const g = await grant('alice', 100);
    expect(g).toMatchObject({ outcome: 'applied', amount: 100, balance_after: 100 });
    const c = await charge('alice', { source_type: 'tts', usage: { seconds: 31 } });
    expect(c).toMatchObject({ outcome: 'applied', amount: 4, balance_before: 100, balance_after: 96 });

    const bal = await tally.http('GET', '/v1/users/alice/balances/points');
    expect(bal.status).toBe(200);
    expect(bal.body).toEqual({ user_id: 'alice', asset: 'points', balance: 96, held: 0, available: 96, total_granted: 100, total_consumed: 4, total_expired: 0, overdrawn: false });

    const txs = await tally.http('GET', '/v1/users/alice/transactions?asset=points');
    expect(txs.body.items.map((t: any) => [t.kind, t.amount, t.balance_before, t.balance_after])).toEqual([
      ['consume', -4, 100, 96],
      ['grant', 100, 0, 100],
    ]);
    expect(txs.body.items[0].transaction_id).toBe(c.transaction_id);
    expect(txs.body.items[0].batches).toEqual([{ batch_id: expect.any(String), amount: 4 }]);

    const batches = await tally.http('GET', '/v1/users/alice/batches?asset=points');
    expect(batches.body.items).toHaveLength(1);
    expect(batches.body.items[0]).toMatchObject({ amount: 100, remaining: 96, source: 'recharge' });
    await expectInvariants(world.sql);
  });

  it('a replay after the BullMQ job was removed is noop_duplicate and changes nothing', async () => {
    const eventId = id('dup');
    const payload = { event_id: eventId, user_id: 'bob', asset: 'points', amount: 50, source: 'gift' };
    const first = (await tally.producer.grant(payload, { wait: true })) as any;
    expect(first.outcome).toBe('applied');
    await tally.producer.queue('grants').remove(eventId);
    const again = (await tally.producer.grant(payload, { wait: true })) as any;
    expect(again).toMatchObject({ outcome: 'noop_duplicate', original_outcome: 'applied', transaction_id: first.transaction_id });
    const bal = await tally.http('GET', '/v1/users/bob/balances/points');
    expect(bal.body.balance).toBe(50);
    const txs = await tally.http('GET', '/v1/users/bob/transactions');
    expect(txs.body.items).toHaveLength(1);
  });

  it('the same event_id with a different payload fails idempotency_conflict and applies nothing', async () => {
    const eventId = id('conf');
    await tally.producer.grant({ event_id: eventId, user_id: 'carol', asset: 'points', amount: 10, source: 'gift' }, { wait: true });
    await tally.producer.queue('grants').remove(eventId);
    const err = await tally.producer
      .grant({ event_id: eventId, user_id: 'carol', asset: 'points', amount: 9999, source: 'gift' }, { wait: true })
      .catch((e: Error) => e);
    expect(String((err as Error).message)).toMatch(/^idempotency_conflict/);
    const bal = await tally.http('GET', '/v1/users/carol/balances/points');
    expect(bal.body.balance).toBe(10);
    const job = await tally.producer.queue('grants').getJob(eventId);
    expect(await job!.getState()).toBe('failed');
    expect(job!.attemptsMade).toBeLessThanOrEqual(1);
  });

  it('an invalid payload fails at once without retries, is dead-lettered, and changes nothing', async () => {
    const before = await world.sql`SELECT count(*)::int AS n FROM ledger_entries`;
    const eventId = id('bad');
    const job = await tally.producer.queue('charges').add('charge', { type: 'charge', event_id: eventId, user_id: 'dave', asset: 'points', amount: -5, policy: 'guarded', source_type: 'x', source_id: 'y' }, { jobId: eventId, attempts: 5 });
    const err = await tally.producer.result('charges', job).catch((e: Error) => e);
    expect(String((err as Error).message)).toMatch(/^invalid_payload: amount/);
    const failed = await tally.producer.queue('charges').getJob(eventId);
    expect(await failed!.getState()).toBe('failed');
    expect(failed!.attemptsMade).toBe(1);
    const [dl] = await world.sql`SELECT reason_code, payload FROM dead_letters WHERE job_id = ${eventId}`;
    expect(dl).toMatchObject({ reason_code: 'invalid_payload', payload: expect.objectContaining({ amount: -5 }) });
    const after = await world.sql`SELECT count(*)::int AS n FROM ledger_entries`;
    expect(after[0]!.n).toBe(before[0]!.n);
    const acct = await world.sql`SELECT 1 FROM accounts WHERE user_id = 'dave'`;
    expect(acct).toHaveLength(0);
  });

  it('an unknown asset and an unpriced source_type without amount are invalid_payload', async () => {
    const e1 = await charge('erin', { asset: 'gold' }).catch((e: Error) => e);
    expect(String((e1 as Error).message)).toMatch(/^invalid_payload: unknown asset "gold"/);
    const e2 = await charge('erin', { source_type: 'karaoke' }).catch((e: Error) => e);
    expect(String((e2 as Error).message)).toMatch(/^invalid_payload: no pricing for source_type "karaoke"/);
    const ok = await charge('erin', { source_type: 'karaoke', amount: 3 });
    expect(ok).toMatchObject({ outcome: 'applied', amount: 3, balance_after: -3 });
  });

  it('post-paid overdraw creates debt; the next grant pays it first and the account unblocks', async () => {
    await grant('frank', 10);
    const c = await charge('frank', { amount: 25 });
    expect(c).toMatchObject({ outcome: 'applied', balance_after: -15 });
    let bal = await tally.http('GET', '/v1/users/frank/balances/points');
    expect(bal.body).toMatchObject({ balance: -15, overdrawn: true, available: -15 });
    const q = await tally.http('POST', '/v1/quotes', { user_id: 'frank', asset: 'points', source_type: 'caption' });
    expect(q.body).toMatchObject({ required: 0, sufficient: false });
    const guarded = await charge('frank', { amount: 1, policy: 'guarded' });
    expect(guarded.outcome).toBe('rejected_insufficient');
    const g = await grant('frank', 40);
    expect(g).toMatchObject({ outcome: 'applied', balance_after: 25 });
    bal = await tally.http('GET', '/v1/users/frank/balances/points');
    expect(bal.body).toMatchObject({ balance: 25, overdrawn: false });
    const batches = await tally.http('GET', '/v1/users/frank/batches');
    expect(batches.body.items.map((b: any) => [b.amount, b.remaining])).toEqual([[40, 25]]);
    const txs = await tally.http('GET', '/v1/users/frank/transactions');
    expect(txs.body.items[0]).toMatchObject({ kind: 'grant', amount: 40, balance_before: -15, balance_after: 25 });
    await expectInvariants(world.sql);
  });

  it('free pricing is noop_free with no entry', async () => {
    const r = await charge('gina', { source_type: 'caption' });
    expect(r).toMatchObject({ outcome: 'noop_free', transaction_id: null, amount: 0 });
    const txs = await tally.http('GET', '/v1/users/gina/transactions');
    expect(txs.body.items).toEqual([]);
  });

  it('expiry is exact at read and charge time before the sweep, and the sweep writes expire entries', async () => {
    const now = await world.clock.now();
    await grant('hank', 30, { expires_at: new Date(now.getTime() + 60_000).toISOString() });
    await grant('hank', 20, { expires_at: null });
    expect((await tally.http('GET', '/v1/users/hank/balances/points')).body.balance).toBe(50);
    await world.clock.advance(60_001); // just past expires_at, by the business clock: no sleeping
    const bal = await tally.http('GET', '/v1/users/hank/balances/points');
    expect(bal.body).toMatchObject({ balance: 20, total_expired: 30 });
    expect((await tally.http('GET', '/v1/users/hank/batches')).body.items.map((b: any) => b.remaining)).toEqual([20]);
    // A guarded charge of 25 must not burn the lapsed batch.
    expect((await charge('hank', { amount: 25, policy: 'guarded' })).outcome).toBe('rejected_insufficient');
    const sweep = await tally.http('POST', '/v1/admin/maintenance/expire', undefined, (await import('./helpers/env.ts')).ADMIN_TOKEN);
    expect(sweep.status).toBe(200);
    const txs = await tally.http('GET', '/v1/users/hank/transactions');
    expect(txs.body.items.map((t: any) => t.kind)).toEqual(['expire', 'grant', 'grant']);
    expect(txs.body.items[0]).toMatchObject({ amount: -30, balance_before: 50, balance_after: 20 });
    await expectInvariants(world.sql);
  });

  it('a grant whose expires_at is already past is recorded and expires at once: nothing spendable, no debt paid', async () => {
    await charge('kim', { amount: 10 }); // debt 10
    const g = await grant('kim', 30, { expires_at: new Date(Date.now() - 60_000).toISOString() });
    expect(g).toMatchObject({ outcome: 'applied', amount: 30, balance_after: -10, expired: 30 });
    const bal = await tally.http('GET', '/v1/users/kim/balances/points');
    expect(bal.body).toMatchObject({ balance: -10, overdrawn: true, total_granted: 30, total_expired: 30 });
    expect((await charge('kim', { amount: 1, policy: 'guarded' })).outcome).toBe('rejected_insufficient');
    await tally.http('POST', '/v1/admin/maintenance/expire', undefined, (await import('./helpers/env.ts')).ADMIN_TOKEN);
    const txs = await tally.http('GET', '/v1/users/kim/transactions');
    expect(txs.body.items.map((t: any) => [t.kind, t.amount, t.balance_after])).toEqual([
      ['expire', -30, -10],
      ['grant', 30, 20],
      ['consume', -10, -10],
    ]);
    expect((await tally.http('GET', '/v1/users/kim/batches')).body.items).toEqual([]);
    await expectInvariants(world.sql);
  });

  it('paginates transactions newest first with an opaque cursor; a malformed cursor is 400', async () => {
    for (let i = 0; i < 5; i++) await grant('ivy', 1 + i);
    const p1 = await tally.http('GET', '/v1/users/ivy/transactions?limit=2');
    expect(p1.body.items.map((t: any) => t.amount)).toEqual([5, 4]);
    const p2 = await tally.http('GET', `/v1/users/ivy/transactions?limit=2&cursor=${p1.body.next_cursor}`);
    expect(p2.body.items.map((t: any) => t.amount)).toEqual([3, 2]);
    const p3 = await tally.http('GET', `/v1/users/ivy/transactions?limit=2&cursor=${p2.body.next_cursor}`);
    expect(p3.body).toMatchObject({ next_cursor: null });
    expect(p3.body.items.map((t: any) => t.amount)).toEqual([1]);
    const bad = await tally.http('GET', '/v1/users/ivy/transactions?cursor=zzz');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_cursor');
  });

  it('a charge sent twice (job removed in between) burns once', async () => {
    await grant('jay', 20);
    const payload = { event_id: id('twice'), user_id: 'jay', asset: 'points', source_type: 'script', source_id: 'p', policy: 'guarded' as const };
    const first = (await tally.producer.charge(payload, { wait: true })) as any;
    await tally.producer.queue('charges').remove(payload.event_id);
    const second = (await tally.producer.charge(payload, { wait: true })) as any;
    expect(first).toMatchObject({ outcome: 'applied', amount: 5, balance_after: 15 });
    expect(second).toMatchObject({ outcome: 'noop_duplicate', original_outcome: 'applied', balance_after: 15 });
    expect((await tally.http('GET', '/v1/users/jay/balances/points')).body.balance).toBe(15);
  });

  it('the SDK validates before enqueueing: a bad payload throws and nothing is queued', async () => {
    const before = await tally.producer.queue('grants').count();
    await expect(tally.producer.grant({ event_id: '123', user_id: 'x', asset: 'points', amount: 1.5, source: 'gift' })).rejects.toThrow(
      /invalid_payload: event_id: must not be all digits; amount: must be an integer/,
    );
    expect(await tally.producer.queue('grants').count()).toBe(before);
  });

  it('reads an unseen user as zeros', async () => {
    const r = await tally.http('GET', '/v1/users/nobody/balances/credits');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ balance: 0, total_granted: 0, overdrawn: false });
  });
});
