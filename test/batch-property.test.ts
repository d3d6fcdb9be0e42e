import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

/**
 * Property: a sequence of `charges` events gives the same ledger whether each is its own job, applied in the order
 * listed, or they travel in batch jobs of any sizes sent at once — same balances, totals and debts, the same decision
 * for every event, the same entries. Guarded
 * charges, refunds of earlier charges, bad payloads and replays make the outcome depend on order and exactly-once.
 */
let world: TestWorld;
let tally: InProcessTally;
let run = 0;

beforeAll(async () => {
  // No refund waits: a refund of a charge that was refused fails unknown_charge at once, the same in both modes.
  world = await createWorld({ TALLY_REFUND_WAIT_SECONDS: '0' });
  await world.applyExampleConfig();
  tally = await startTally(world, ['worker']);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

type Op =
  | { kind: 'charge'; user: number; amount: number; guarded: boolean }
  | { kind: 'refund'; of: number; amount: number | null }
  | { kind: 'bad'; user: number }
  | { kind: 'replay'; of: number };

const USERS = 3;
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('charge' as const), user: fc.nat(USERS - 1), amount: fc.integer({ min: 1, max: 15 }), guarded: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('refund' as const), of: fc.nat(), amount: fc.option(fc.integer({ min: 1, max: 10 }), { nil: null }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bad' as const), user: fc.nat(USERS - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('replay' as const), of: fc.nat() }) },
);

/** The payloads of `ops` under a tag (users and event ids are the tag's own). A refund or replay names an earlier op. */
function payloads(tag: string, ops: Op[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const charges: number[] = [];
  ops.forEach((op, i) => {
    const eid = `${tag}-e${i}`;
    if (op.kind === 'charge') {
      charges.push(i);
      out.push({ type: 'charge', event_id: eid, user_id: `${tag}-u${op.user}`, asset: 'points', source_type: 'script', source_id: `s${i}`, amount: op.amount, policy: op.guarded ? 'guarded' : 'postpaid' });
    } else if (op.kind === 'refund' && charges.length > 0) {
      const c = charges[op.of % charges.length]!;
      out.push({ type: 'refund', event_id: eid, charge_event_id: `${tag}-e${c}`, ...(op.amount === null ? {} : { amount: op.amount }) });
    } else if (op.kind === 'bad') {
      out.push({ type: 'charge', event_id: eid, user_id: `${tag}-u${op.user}`, asset: 'points', source_type: 'script', source_id: 's', amount: -1, policy: 'postpaid' });
    } else if (op.kind === 'replay' && out.length > 0) {
      out.push(out[op.of % out.length]!);
    }
  });
  return out;
}

/** The ledger as the tag's events left it, with the tag taken out of every id. */
async function state(tag: string) {
  const untag = (s: string) => s.replace(`${tag}-`, '');
  const accounts = await world.sql<{ user_id: string; balance: string; debt: string; total_granted: string; total_consumed: string }[]>`
    SELECT user_id, balance, debt, total_granted, total_consumed FROM accounts WHERE user_id LIKE ${`${tag}-%`} ORDER BY user_id`;
  const decided = await world.sql<{ event_id: string; outcome: string; amount: string | null }[]>`
    SELECT event_id, outcome, result->>'amount' AS amount FROM processed_events WHERE event_id LIKE ${`${tag}-%`} ORDER BY event_id`;
  const entries = await world.sql<{ event_id: string; kind: string; amount: string; balance_after: string }[]>`
    SELECT event_id, kind, amount, balance_after FROM ledger_entries WHERE user_id LIKE ${`${tag}-%`} ORDER BY event_id, entry_id`;
  return {
    accounts: accounts.map((a) => ({ ...a, user_id: untag(a.user_id) })),
    decided: decided.map((d) => ({ ...d, event_id: untag(d.event_id) })),
    entries: entries.map((e) => ({ ...e, event_id: e.event_id === null ? null : untag(e.event_id) })),
  };
}

async function apply(tag: string, ops: Op[], batchSize: number | null) {
  const events = payloads(tag, ops);
  // Every user starts with 30 points (their own grants, applied first: the queues run independently).
  const grants = Array.from({ length: USERS }, (_, u) => ({ event_id: `${tag}-g${u}`, user_id: `${tag}-u${u}`, asset: 'points', amount: 30, source: 'gift', expires_at: null }));
  await tally.producer.eventResults('grants', await tally.producer.grantBulk(grants), 30_000);
  if (events.length === 0) return;
  const charges = tally.producer.queue('charges');
  if (batchSize === null) {
    // The reference: each event its own job, in the order listed, each applied before the next is sent. (Separate
    // jobs sent together carry no order: a worker with concurrency > 1 may start a later job first — BullMQ hands a
    // finishing job the next one in its own script while the main loop fetches another. CI run of 2026-11-30.)
    // Replays are sent as raw jobs: one job per event would collapse a repeated jobId, which is BullMQ's dedupe, not ours.
    for (const [i, e] of events.entries()) {
      const job = await charges.add(String(e.type), e, { jobId: `${e.event_id}.j${i}` });
      const [r] = await tally.producer.eventResults('charges', [job], 60_000);
      expect(r).not.toMatchObject({ failed: 'timeout' });
    }
    return;
  }
  const jobs = await charges.addBulk(chunks(events, batchSize).map((c, k) => ({ name: 'batch', data: { type: 'batch', events: c }, opts: { jobId: `${tag}-b${k}` } })));
  const results = await tally.producer.eventResults('charges', jobs, 60_000);
  expect(results.filter((r) => 'failed' in r && r.failed === 'timeout')).toEqual([]);
}

function chunks<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

describe('batch jobs: property', () => {
  it('any batch composition leaves the same ledger as one job per event', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 40 }), async (ops, batchSize) => {
        const n = ++run;
        await apply(`p${n}s`, ops, null);
        await apply(`p${n}b`, ops, batchSize);
        expect(await state(`p${n}b`)).toEqual(await state(`p${n}s`));
      }),
      { numRuns: 12 },
    );
    await expectInvariants(world.sql);
  }, 240_000);
});
