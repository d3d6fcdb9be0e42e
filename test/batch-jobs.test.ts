import '../src/modules.ts'; // every feature module, as the CLI loads them: the affinity worker too
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

/**
 * Batch jobs (CONTRACT v2 §3): `{"type":"batch","events":[…]}` on each of the three queues, every member applied
 * exactly as if it were its own job. Through the real queues, worker and PostgreSQL.
 */
let world: TestWorld;
let tally: InProcessTally;
let n = 0;
const id = (p: string) => `${p}-${++n}-${Date.now().toString(36)}`;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world, ['worker']);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

const grant = (user: string, amount: number, extra: Record<string, unknown> = {}) =>
  ({ type: 'grant', event_id: id('g'), user_id: user, asset: 'points', amount, source: 'gift', expires_at: null, ...extra });
const charge = (user: string, amount: number, extra: Record<string, unknown> = {}) =>
  ({ type: 'charge', event_id: id('c'), user_id: user, asset: 'points', source_type: 'script', source_id: 's', amount, policy: 'guarded', ...extra });

async function batch(queue: string, events: unknown[], jobId = id('batch')): Promise<any> {
  const job = await tally.producer.queue(queue).add('batch', { type: 'batch', events }, { jobId });
  return tally.producer.result(queue, job, 60_000);
}
async function failure(queue: string, data: unknown, jobId = id('batch')): Promise<{ reason: string; attempts: number }> {
  const job = await tally.producer.queue(queue).add('batch', data as never, { jobId, attempts: 3 });
  const err = await tally.producer.result(queue, job, 30_000).then(() => null, (e: Error) => e);
  const failed = (await tally.producer.queue(queue).getJob(jobId))!;
  return { reason: err!.message, attempts: failed.attemptsMade };
}
async function balance(user: string): Promise<number> {
  const [row] = await world.sql<{ balance: string }[]>`SELECT balance FROM accounts WHERE user_id = ${user} AND asset = 'points'`;
  return Number(row?.balance ?? 0);
}
const deadLetters = (eventIdLike: string) =>
  world.sql<{ job_id: string; event_id: string | null; reason_code: string; queue: string }[]>`
    SELECT queue, job_id, event_id, reason_code FROM dead_letters WHERE event_id LIKE ${eventIdLike} OR job_id LIKE ${eventIdLike} ORDER BY job_id`;

describe('batch jobs on grants and charges', () => {
  it('applies every member in the order listed and answers each in order', async () => {
    const u = id('order');
    const events = [grant(u, 10), charge(u, 10), charge(u, 1), grant(u, 5), charge(u, 3)];
    const grants = await batch('grants', [events[0]]);
    expect(grants).toEqual({ outcome: 'batch', results: [expect.objectContaining({ outcome: 'applied', amount: 10, balance_after: 10 })] });
    const charges = await batch('charges', [events[1], events[2]]);
    // Guarded charges decide against the balance the earlier member left: order matters and is kept.
    expect(charges.results.map((r: any) => [r.outcome, r.balance_after])).toEqual([['applied', 0], ['rejected_insufficient', 0]]);
    expect(await balance(u)).toBe(0);
    await expectInvariants(world.sql);
  });

  it('keeps per-user order across many users interleaved in one batch of 1000', async () => {
    const users = Array.from({ length: 7 }, () => id('many'));
    await batch('grants', users.map((u) => grant(u, 1_000)));
    const events = Array.from({ length: 1000 }, (_, i) => charge(users[i % users.length]!, 1 + (i % 3), { policy: 'postpaid' }));
    const out = await batch('charges', events);
    expect(out.results).toHaveLength(1000);
    // Each user's charges chain: balance_before of one is balance_after of the previous, in the order listed.
    const last = new Map(users.map((u) => [u, 1_000]));
    out.results.forEach((r: any, i: number) => {
      const u = events[i]!.user_id;
      expect(r).toMatchObject({ outcome: 'applied', amount: 1 + (i % 3), balance_before: last.get(u) });
      last.set(u, r.balance_after);
    });
    for (const u of users) expect(await balance(u)).toBe(last.get(u));
    // A batch of 1000 is a few group commits, not 1000: transaction ids are shared by the events of one commit.
    const [tx] = await world.sql<{ n: number }[]>`
      SELECT count(DISTINCT xmin::text)::int AS n FROM ledger_entries WHERE event_id = ANY(${events.map((e) => e.event_id)}::text[])`;
    expect(tx!.n).toBeLessThan(50);
    await expectInvariants(world.sql);
  }, 60_000);

  it('a member replayed — in another batch or as its own job — answers noop_duplicate with its original result', async () => {
    const u = id('replay');
    const g = grant(u, 100);
    const c = charge(u, 30);
    const first = await batch('charges', [c]).then(async (r) => ({ g: await batch('grants', [g]), c: r }));
    expect(first.c.results[0]).toMatchObject({ outcome: 'rejected_insufficient' }); // its grant came after it
    const c2 = charge(u, 40);
    const again = await batch('charges', [c, c2, c]);
    expect(again.results[0]).toEqual({ ...first.c.results[0], outcome: 'noop_duplicate', original_outcome: 'rejected_insufficient' });
    expect(again.results[1]).toMatchObject({ outcome: 'applied', amount: 40, balance_after: 60 });
    expect(again.results[2]).toMatchObject({ outcome: 'noop_duplicate', original_outcome: 'rejected_insufficient' });
    // The same event as its own job (jobId = event_id) after the batch, and a batch after the single job.
    const single = (await tally.producer.charge({ ...c2, type: undefined } as never, { wait: true })) as any;
    expect(single).toEqual({ ...again.results[1], outcome: 'noop_duplicate', original_outcome: 'applied' });
    const c3 = charge(u, 5);
    expect(await tally.producer.charge({ ...c3, type: undefined } as never, { wait: true })).toMatchObject({ outcome: 'applied', balance_after: 55 });
    const after = await batch('charges', [c3]);
    expect(after.results[0]).toMatchObject({ outcome: 'noop_duplicate', original_outcome: 'applied', balance_after: 55 });
    expect(await balance(u)).toBe(55);
    const [entries] = await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM ledger_entries WHERE user_id = ${u}`;
    expect(entries!.n).toBe(3);
  });

  it('a bad member fails alone, dead-lettered under <job id>#<index>; the others apply', async () => {
    const u = id('bad');
    const jobId = id('batch-bad');
    const conflicting = grant(u, 7);
    await batch('grants', [conflicting]);
    const events = [
      grant(u, 10),
      { ...grant(u, 5), amount: -5 }, // schema: fails before the batcher
      grant(u, 3, { asset: 'no-such-asset' }), // config: fails inside the transaction
      { ...conflicting, amount: 8 }, // same event_id, another payload
      grant(u, 1),
    ];
    const out = await batch('grants', events, jobId);
    expect(out.results.map((r: any) => r.outcome ?? r.failed)).toEqual(['applied', 'invalid_payload', 'invalid_payload', 'idempotency_conflict', 'applied']);
    expect(out.results[1].reason).toMatch(/^invalid_payload: amount/);
    expect(out.results[3].reason).toMatch(/^idempotency_conflict/);
    expect(out.results[4]).toMatchObject({ balance_after: 18 });
    expect(await balance(u)).toBe(18);
    const letters = await world.sql<{ job_id: string; event_id: string; reason_code: string }[]>`
      SELECT job_id, event_id, reason_code FROM dead_letters WHERE job_id LIKE ${`${jobId}#%`} ORDER BY job_id`;
    expect(letters).toEqual([
      { job_id: `${jobId}#1`, event_id: events[1]!.event_id, reason_code: 'invalid_payload' },
      { job_id: `${jobId}#2`, event_id: events[2]!.event_id, reason_code: 'invalid_payload' },
      { job_id: `${jobId}#3`, event_id: conflicting.event_id, reason_code: 'idempotency_conflict' },
    ]);
    // The job itself completed: its result says which members failed.
    expect(await (await tally.producer.queue('grants').getJob(jobId))!.getState()).toBe('completed');
    await expectInvariants(world.sql);
  });

  it('hostile members (NUL, __proto__, 1e308, a total past 2^53, a deep event) fail alone; their batch-mates apply', async () => {
    const u = id('hostile');
    let deep: unknown = 1;
    for (let i = 0; i < 2_000; i++) deep = { d: deep }; // as deep as a producer's JSON.stringify goes comfortably
    const events: unknown[] = [
      grant(u, 10),
      grant(u, 1, { source: 'gi\u0000ft' }),
      JSON.parse(`{"__proto__":{"amount":1},${JSON.stringify(grant(u, 2)).slice(1)}`),
      grant(u, 1e308),
      grant(u, Number.MAX_SAFE_INTEGER),
      grant(u, 1, { description: deep }),
      grant(u, 5),
    ];
    const out = await batch('grants', events);
    expect(out.results.map((r: any) => r.outcome ?? r.failed)).toEqual([
      'applied', 'invalid_payload', 'invalid_payload', 'invalid_payload', 'invalid_payload', 'invalid_payload', 'applied',
    ]);
    expect(await balance(u)).toBe(15);
    expect(({} as Record<string, unknown>).amount).toBeUndefined();
    await expectInvariants(world.sql);
  });

  it('a malformed envelope fails the whole job at once, without retries, and applies nothing', async () => {
    const u = id('env');
    const ok = grant(u, 10);
    const cases: [unknown, RegExp][] = [
      [{ type: 'batch', events: 'nope' }, /^invalid_payload: events: must be an array/],
      [{ type: 'batch', events: [] }, /^invalid_payload: events: must hold 1–1000 payloads \(got 0\)/],
      [{ type: 'batch', events: Array.from({ length: 1001 }, () => ok) }, /got 1001/],
      [{ type: 'batch', events: [ok, charge(u, 1)] }, /^invalid_payload: events\.1\.type: must be one of grant, reward\.event on the grants queue/],
      [{ type: 'batch', events: [ok, { type: 'batch', events: [ok] }] }, /events\.1\.type/],
      [{ type: 'batch', events: [ok, null] }, /events\.1\.type/],
      [{ type: 'batch', events: [ok], priority: 1 }, /unknown key\(s\) "priority"/],
    ];
    for (const [data, reason] of cases) {
      const jobId = id('batch-env');
      const f = await failure('grants', data, jobId);
      expect(f.reason).toMatch(reason);
      expect(f.attempts).toBe(1);
      const [letter] = await world.sql`SELECT reason_code, event_id FROM dead_letters WHERE queue = 'grants' AND job_id = ${jobId}`;
      expect(letter).toEqual({ reason_code: 'invalid_payload', event_id: null });
    }
    expect(await balance(u)).toBe(0);
  });
});

describe('a refund in a batch that waits for its charge', () => {
  it('the others apply at once; the job waits for the refund alone and ends with every original result', async () => {
    const u = id('wait');
    const later = charge(u, 4, { policy: 'postpaid' });
    const refund = { type: 'refund', event_id: id('rf'), charge_event_id: later.event_id, amount: 4 };
    const before = charge(u, 2, { policy: 'postpaid' });
    const after = charge(u, 1, { policy: 'postpaid' });
    const jobId = id('batch-wait');
    const job = await tally.producer.queue('charges').add('batch', { type: 'batch', events: [before, refund, after] }, { jobId });
    const waiting = await waitFor('the batch to wait', async () => {
      const j = await tally.producer.queue('charges').getJob(jobId);
      return j && (await j.getState()) === 'delayed' && (j.progress as any)?.batch_results ? j : undefined;
    });
    const progress = waiting.progress as any;
    expect(progress.waiting_since).toEqual(expect.any(Number));
    expect(progress.batch_results.map((r: any) => r?.outcome ?? null)).toEqual(['applied', null, 'applied']);
    expect(await balance(u)).toBe(-3);
    // Still waiting on a later attempt: the remembered results and the wait's start are kept, not clobbered.
    await waitFor('another attempt', async () => {
      const j = await tally.producer.queue('charges').getJob(jobId);
      return j && j.timestamp && (j.processedOn ?? 0) > (waiting.processedOn ?? 0) && (await j.getState()) === 'delayed' ? j : undefined;
    });
    const again = (await tally.producer.queue('charges').getJob(jobId))!.progress as any;
    expect(again.waiting_since).toBe(progress.waiting_since);
    expect(again.batch_results.map((r: any) => r?.outcome ?? null)).toEqual(['applied', null, 'applied']);

    await tally.producer.charge({ ...later, type: undefined } as never, { wait: true });
    const out = (await tally.producer.result('charges', job, 30_000)) as any;
    expect(out.results.map((r: any) => r.outcome)).toEqual(['applied', 'applied', 'applied']); // originals, not noop_duplicate
    expect(out.results[1]).toMatchObject({ amount: 4, balance_after: -3 });
    expect(await balance(u)).toBe(-3);
    const [entries] = await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM ledger_entries WHERE user_id = ${u}`;
    expect(entries!.n).toBe(4);
    await expectInvariants(world.sql);
  }, 60_000);
});

describe('batch jobs on affinity-events', () => {
  it('applies events in order, level rewards included, and a bad member fails alone', async () => {
    const u = id('aff');
    const ev = (extra: Record<string, unknown>) => ({ type: 'affinity.event', event_id: id('a'), user_id: u, device_id: 'd1', source: 'app', ...extra });
    const events = [
      ev({ rule_key: 'chat' }),
      ev({ rule_key: 'chat' }), // within the first one's cooldown
      { type: 'affinity.adjust', event_id: id('adj'), user_id: u, device_id: 'd1', delta: 150, operator_id: 'op', reason: 'welcome' },
      ev({ rule_key: 'no-such-rule' }),
      ev({ rule_key: 'gift', metadata: { units: 0 } }), // bad input
      ev({ rule_key: 'rude' }),
    ];
    const jobId = id('batch-aff');
    const out = await batch('affinity-events', events, jobId);
    expect(out.results.map((r: any) => r.outcome ?? r.failed)).toEqual(['applied', 'noop_cooldown', 'applied', 'noop_no_rule', 'invalid_payload', 'applied']);
    expect(out.results[0]).toMatchObject({ before: 0, after: 2 });
    expect(out.results[2]).toMatchObject({ before: 2, after: 152, level_before: 1, level_after: 2, rewards: [expect.objectContaining({ level: 2, asset: 'points', amount: 50 })] });
    expect(out.results[5]).toMatchObject({ before: 152, after: 142 });
    expect(await balance(u)).toBe(50);
    expect(await deadLetters(`${jobId}#%`)).toEqual([{ queue: 'affinity-events', job_id: `${jobId}#4`, event_id: events[4]!.event_id, reason_code: 'invalid_payload' }]);
    const replay = await batch('affinity-events', events.slice(2, 3));
    expect(replay.results[0]).toMatchObject({ outcome: 'noop_duplicate', original_outcome: 'applied', after: 152 });
    expect(await balance(u)).toBe(50);
    await expectInvariants(world.sql);
  });
});
