import '../src/money/register.ts';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_CONFIG } from '../src/cli/dev.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;
let example: any;
let n = 0;
const id = (p: string) => `${p}-${++n}-${Date.now().toString(36)}`;

beforeAll(async () => {
  world = await createWorld({ TALLY_REFUND_WAIT_SECONDS: '2' });
  example = parseYaml(await readFile(EXAMPLE_CONFIG, 'utf8'));
  await world.applyConfig(example);
  tally = await startTally(world);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

async function grant(user: string, amount: number, extra: Record<string, unknown> = {}) {
  return tally.producer.grant({ event_id: id('g'), user_id: user, asset: 'credits', amount, source: 'recharge', ...extra }, { wait: true }) as Promise<any>;
}
async function charge(user: string, extra: Record<string, unknown>) {
  const eventId = id('c');
  const r = (await tally.producer.charge(
    { event_id: eventId, user_id: user, asset: 'credits', source_type: 'llm', source_id: 'r', policy: 'postpaid', ...extra } as never,
    { wait: true },
  )) as any;
  return { ...r, event_id: eventId };
}
function refund(chargeEventId: string, extra: Record<string, unknown> = {}) {
  return tally.producer.refund({ event_id: id('rf'), charge_event_id: chargeEventId, ...extra }, { wait: true }) as Promise<any>;
}
async function balance(user: string) {
  return (await tally.http('GET', `/v1/users/${user}/balances/credits`)).body;
}
function reward(user: string, extra: Record<string, unknown> = {}) {
  return tally.producer.rewardEvent(
    { event_id: id('rw'), event_type: 'forum.post.liked', event_version: '1', receiver_user_id: user, source_ref_id: id('post'), ...extra },
    { wait: true },
  ) as Promise<any>;
}

describe('token pricing', () => {
  it('a price-rule change between two usages never re-prices the earlier one (priced at occurred_at)', async () => {
    const usage = { model: 'gpt-4o-mini', input_tokens: 1000, output_tokens: 1000 };
    const before = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 50));
    const doubled = structuredClone(example);
    doubled.pricing.credits.llm.models['gpt-4o-mini'] = { input_per_1k: 2, output_per_1k: 8 };
    await world.applyConfig(doubled);
    try {
      const old = await charge('pricey', { usage, occurred_at: before });
      expect(old).toMatchObject({ outcome: 'applied', amount: 5 });
      const now = await charge('pricey', { usage });
      expect(now).toMatchObject({ outcome: 'applied', amount: 10 });
    } finally {
      await world.applyConfig(example);
    }
  });

  it('a usage enqueued in the same millisecond the new price was applied is priced by it', async () => {
    // A job's enqueue time (the default occurred_at) has millisecond resolution; applied_at has microseconds.
    const usage = { model: 'gpt-4o-mini', input_tokens: 1000, output_tokens: 1000 };
    const doubled = structuredClone(example);
    doubled.pricing.credits.llm.models['gpt-4o-mini'] = { input_per_1k: 2, output_per_1k: 8 };
    await world.applyConfig(doubled);
    try {
      const [row] = await world.sql<{ at: string }[]>`
        SELECT to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at, applied_at
        FROM config_documents ORDER BY version DESC LIMIT 1`;
      expect(await charge('samems', { usage, occurred_at: row!.at })).toMatchObject({ outcome: 'applied', amount: 10 });
    } finally {
      await world.applyConfig(example);
    }
  });

  it('an unknown model is invalid_payload unless the asset has a default model rule', async () => {
    const e = await charge('models', { usage: { model: 'mystery', output_tokens: 10 } }).catch((x: Error) => x);
    expect(String((e as Error).message)).toMatch(/^invalid_payload: unknown model "mystery"/);
    const withDefault = structuredClone(example);
    withDefault.pricing.credits.llm.models.default = { input_per_1k: 10, output_per_1k: 10 };
    await world.applyConfig(withDefault);
    try {
      const r = await charge('models', { usage: { model: 'mystery', input_tokens: 150, output_tokens: 0 } });
      expect(r).toMatchObject({ outcome: 'applied', amount: 2 }); // ceil(1.5)
    } finally {
      await world.applyConfig(example);
    }
  });
});

describe('refunds', () => {
  it('refund twice → once: the replay is noop_duplicate; a second refund event finds nothing left', async () => {
    await grant('ref1', 100);
    const c = await charge('ref1', { amount: 30 });
    const payload = { event_id: id('rf'), charge_event_id: c.event_id };
    const first = (await tally.producer.refund(payload, { wait: true })) as any;
    expect(first).toMatchObject({ outcome: 'applied', amount: 30, balance_before: 70, balance_after: 100 });
    await tally.producer.queue('charges').remove(payload.event_id);
    const replay = (await tally.producer.refund(payload, { wait: true })) as any;
    expect(replay).toMatchObject({ outcome: 'noop_duplicate', transaction_id: first.transaction_id });
    const second = await refund(c.event_id).catch((e: Error) => e);
    expect(String((second as Error).message)).toMatch(/^refund_exceeds_charge: charge "[^"]+" has nothing left to refund/);
    expect(await balance('ref1')).toMatchObject({ balance: 100, total_granted: 100, total_consumed: 0 });
    const batches = await tally.http('GET', '/v1/users/ref1/batches');
    expect(batches.body.items.map((b: any) => [b.amount, b.remaining])).toEqual([[100, 100]]);
    const txs = await tally.http('GET', '/v1/users/ref1/transactions');
    expect(txs.body.items[0]).toMatchObject({ kind: 'refund', amount: 30, source_id: c.event_id, batches: [{ amount: 30 }] });
    await expectInvariants(world.sql);
  });

  it('partial refunds never give back more than was charged', async () => {
    await grant('ref2', 50);
    const c = await charge('ref2', { amount: 20 });
    expect(await refund(c.event_id, { amount: 15 })).toMatchObject({ outcome: 'applied', amount: 15 });
    const over = await refund(c.event_id, { amount: 6 }).catch((e: Error) => e);
    expect(String((over as Error).message)).toMatch(/^refund_exceeds_charge: refund of 6 exceeds the 5 left/);
    expect(await refund(c.event_id)).toMatchObject({ outcome: 'applied', amount: 5 });
    expect(await balance('ref2')).toMatchObject({ balance: 50, total_consumed: 0 });
    const unknown = await refund('no-such-charge').catch((e: Error) => e);
    expect(String((unknown as Error).message)).toMatch(/^unknown_charge/);
    await expectInvariants(world.sql);
  });

  it('refund after its batch expired: that part is not revived; active batches get theirs back', async () => {
    const now = await world.clock.now();
    await grant('ref3', 10, { expires_at: new Date(now.getTime() + 60_000).toISOString() });
    await grant('ref3', 10, { expires_at: null });
    const c = await charge('ref3', { amount: 15 }); // 10 from the expiring batch, 5 from the lasting one
    await world.clock.advance(60_000); // to the expiry instant itself: the batch no longer counts
    const r = await refund(c.event_id);
    expect(r).toMatchObject({ outcome: 'applied', amount: 5, requested: 15, balance_before: 5, balance_after: 10 });
    expect(await balance('ref3')).toMatchObject({ balance: 10, total_granted: 20, total_consumed: 10, total_expired: 0 });
    const batches = await tally.http('GET', '/v1/users/ref3/batches');
    expect(batches.body.items.map((b: any) => [b.amount, b.remaining])).toEqual([[10, 10]]);
    await expectInvariants(world.sql);
  });

  it('refunding a charge that overdrew pays the debt back first', async () => {
    await grant('ref4', 10);
    const c = await charge('ref4', { amount: 25 });
    expect(await balance('ref4')).toMatchObject({ balance: -15, overdrawn: true });
    expect(await refund(c.event_id, { amount: 20 })).toMatchObject({ amount: 20, balance_after: 5 });
    expect(await balance('ref4')).toMatchObject({ balance: 5, overdrawn: false });
    expect(await refund(c.event_id)).toMatchObject({ amount: 5, balance_after: 10 });
    await expectInvariants(world.sql);
  });
});

describe('reward events', () => {
  it('grants by the matching rule; an unknown event type is noop_no_rule', async () => {
    const eventId = id('rw');
    const r = await reward('fan', { event_id: eventId, source_ref_id: 'post-1' });
    expect(r).toMatchObject({ outcome: 'applied', amount: 1, balance_after: 1 });
    await tally.producer.queue('grants').remove(eventId);
    const replay = await reward('fan', { event_id: eventId, source_ref_id: 'post-1' });
    expect(replay).toMatchObject({ outcome: 'noop_duplicate', original_outcome: 'applied', transaction_id: r.transaction_id });
    const none = await reward('fan', { event_type: 'forum.post.deleted' });
    expect(none).toMatchObject({ outcome: 'noop_no_rule', amount: 0 });
    const txs = await tally.http('GET', '/v1/users/fan/transactions');
    expect(txs.body.items).toHaveLength(1);
    expect(txs.body.items[0]).toMatchObject({ kind: 'grant', source_type: 'reward', description: 'forum.post.liked' });
  });

  it('an unsupported version is dead-lettered with its reason and grants nothing', async () => {
    const eventId = id('rw');
    const e = await reward('fan2', { event_id: eventId, event_version: '2' }).catch((x: Error) => x);
    expect(String((e as Error).message)).toMatch(/^unsupported_version/);
    const [dl] = await world.sql`SELECT reason_code, reason, payload FROM dead_letters WHERE job_id = ${eventId}`;
    expect(dl).toMatchObject({ reason_code: 'unsupported_version', payload: expect.objectContaining({ event_version: '2' }) });
    const job = await tally.producer.queue('grants').getJob(eventId);
    expect(job!.attemptsMade).toBe(1);
    expect(await balance('fan2')).toMatchObject({ balance: 0, total_granted: 0 });
    // A payload that does not validate: invalid_payload, also kept.
    const badId = id('rw');
    const job2 = await tally.producer.queue('grants').add('reward.event', { type: 'reward.event', event_id: badId, event_type: 'forum.post.liked' }, { jobId: badId });
    const e2 = await tally.producer.result('grants', job2).catch((x: Error) => x);
    expect(String((e2 as Error).message)).toMatch(/^invalid_payload/);
    const [dl2] = await world.sql`SELECT reason_code FROM dead_letters WHERE job_id = ${badId}`;
    expect(dl2!.reason_code).toBe('invalid_payload');
  });

  it('a missing or empty event_version means the newest version the rule lists', async () => {
    const bumped = structuredClone(example);
    bumped.rewards['forum.post.imported'].versions = ['1', '2'];
    await world.applyConfig(bumped);
    try {
      const { event_version: _omitted, ...noVersion } = { event_id: id('rw'), event_type: 'forum.post.imported', event_version: '', receiver_user_id: 'nover', source_ref_id: id('post') };
      // (Read from the decision: the producer's result() can answer null when its poll fetched the job just before
      // it completed — a producer race, not the ledger's.)
      await tally.producer.rewardEvent(noVersion as never, { wait: true });
      const empty = id('rw');
      await reward('nover', { event_id: empty, event_type: 'forum.post.imported', event_version: '' });
      const decided = await world.sql`SELECT event_id, result FROM processed_events WHERE event_id IN (${noVersion.event_id}, ${empty}) ORDER BY event_id`;
      expect(decided.map((d) => d.result)).toEqual([expect.objectContaining({ outcome: 'applied', amount: 5 }), expect.objectContaining({ outcome: 'applied', amount: 5 })]);
      expect(await balance('nover')).toMatchObject({ balance: 10 });
    } finally {
      await world.applyConfig(example);
    }
  });

  it('the daily cap counts natural days in the config timezone', async () => {
    const capped = structuredClone(example);
    capped.rewards['forum.post.liked'].daily_cap = 2;
    await world.applyConfig(capped);
    try {
      // Asia/Shanghai midnight is 16:00 UTC: pick the last one at least a minute ago.
      const now = Date.now();
      let midnight = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate(), 16);
      while (midnight > now - 60_000) midnight -= 86_400_000;
      const before = new Date(midnight - 30_000).toISOString();
      const after = new Date(midnight + 30_000).toISOString();
      expect((await reward('capper', { occurred_at: before })).outcome).toBe('applied');
      expect((await reward('capper', { occurred_at: before })).outcome).toBe('applied');
      expect((await reward('capper', { occurred_at: before })).outcome).toBe('noop_reward_daily_cap');
      // 60 seconds later by the clock, but the next day in Shanghai: a fresh cap.
      expect((await reward('capper', { occurred_at: after })).outcome).toBe('applied');
      expect(await balance('capper')).toMatchObject({ balance: 3 });
      // The uncapped rule is not limited.
      for (let i = 0; i < 3; i++) expect((await reward('capper', { event_type: 'forum.post.imported', occurred_at: before })).outcome).toBe('applied');
    } finally {
      await world.applyConfig(example);
    }
    await expectInvariants(world.sql);
  });
});

describe('one ledger transaction', () => {
  it('a refund right behind its charge in the same group commit finds it', async () => {
    const { runLedger } = await import('../src/ledger/transaction.ts');
    const { ConfigCache } = await import('../src/config/store.ts');
    const key = (eventId: string, payload: unknown) => ({ queue: 'charges', eventId, jobId: eventId, payloadHash: eventId, payload });
    await grant('same', 40);
    const chargeId = id('c');
    const report = await runLedger(world.sql, new ConfigCache(), [
      { ...key(chargeId, {}), op: 'charge', userId: 'same', asset: 'credits', sourceType: 'llm', sourceId: 'r', usage: null, amount: 12n, policy: 'postpaid', occurredAt: new Date(), description: null },
      { ...key(id('rf'), {}), op: 'refund', chargeEventId: chargeId, amount: 5n, reason: 'partial outage' },
      { ...key(id('rf'), {}), op: 'refund', chargeEventId: chargeId, amount: 8n, reason: null },
    ]);
    expect(report.outcomes.map((o) => (o.ok ? o.result.outcome : o.error.code))).toEqual(['applied', 'applied', 'refund_exceeds_charge']);
    expect(await balance('same')).toMatchObject({ balance: 33, total_consumed: 7 });
    await expectInvariants(world.sql);
  });
});
