import '../src/money/register.ts';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigCache } from '../src/config/store.ts';
import { HttpError } from '../src/errors.ts';
import { applyHoldBatch, type HoldOp, type HoldOutcome } from '../src/money/hold-batch.ts';
import { PG_BASE, createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { grantCmd } from './helpers/ledger-commands.ts';
import { runLedger } from '../src/ledger/transaction.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

/**
 * Issue 13 item 3: hold requests group-committed. A run of requests in one transaction answers each exactly as one
 * transaction per request would, in the run's order; a request's own failure is its alone; passing faults are retried.
 */
let world: TestWorld;
const configs = new ConfigCache();
let n = 0;
const id = (p: string) => `${p}-${++n}`;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
});
afterAll(async () => {
  await world?.drop();
});

async function grant(user: string, amount: number) {
  await runLedger(world.sql, configs, [grantCmd(id('g'), user, amount, { asset: 'credits' })]);
}
const place = (user: string, amount: number, extra: Record<string, unknown> = {}): HoldOp => ({
  op: 'place',
  req: { event_id: id('h'), user_id: user, asset: 'credits', source_type: 'llm', amount, ttl_seconds: 600, ...extra } as never,
});
const release = (holdId: string, user: string): HoldOp => ({ op: 'release', holdId, userId: user, asset: 'credits' });

/** An outcome without the parts that differ between two users (ids, times). */
function shape(o: HoldOutcome): unknown {
  if (o.kind === 'insufficient') return { kind: o.kind, required: o.required, available: o.available };
  if (o.kind === 'failed') return { kind: o.kind, code: (o.error as HttpError).code };
  return { kind: o.kind, amount: o.hold.amount, status: o.hold.status };
}

describe('a run of hold requests in one transaction', () => {
  it('answers each request in order: releases free room for later holds, a repeated event_id is the same hold, bad input fails alone', async () => {
    await grant('run-a', 30);
    const [first] = await applyHoldBatch(world.sql, configs, [place('run-a', 25)]);
    expect(first).toMatchObject({ kind: 'created' });
    const firstHold = (first as { hold: { hold_id: string } }).hold.hold_id;
    const twin = place('run-a', 5);
    const ops: HoldOp[] = [
      place('run-a', 10), // 5 left: refused
      release(firstHold, 'run-a'), // 30 left
      place('run-a', 10, { source_type: 'no-such-type', amount: undefined }), // bad input: fails alone
      twin,
      { ...twin }, // the same event_id and body again in the run: the same hold
      { op: 'place', req: { ...(twin as { req: object }).req, ttl_seconds: 60 } } as HoldOp, // another body: 409
      place('run-a', 25), // 25 left: exactly covered
      place('run-a', 1), // 0 left: refused
      release(firstHold, 'run-a'), // released already: as it is
    ];
    const out = await applyHoldBatch(world.sql, configs, ops);
    expect(out.map((o) => o.kind)).toEqual(['insufficient', 'released', 'failed', 'created', 'existing', 'failed', 'created', 'insufficient', 'released']);
    expect(out[0]).toMatchObject({ required: 10n, available: 5n });
    expect((out[2] as { error: HttpError }).error).toMatchObject({ status: 422, code: 'unknown_source_type' });
    expect((out[5] as { error: HttpError }).error).toMatchObject({ status: 409, code: 'idempotency_conflict' });
    expect(out[7]).toMatchObject({ required: 1n, available: 0n });
    expect((out[4] as { hold: { hold_id: string } }).hold.hold_id).toBe((out[3] as { hold: { hold_id: string } }).hold.hold_id);
    expect((out[8] as { hold: { status: string } }).hold.status).toBe('released');
    const rows = await world.sql<{ n: number; txs: number }[]>`
      SELECT count(*)::int AS n, count(DISTINCT xmin::text)::int AS txs FROM holds WHERE user_id = 'run-a' AND hold_id <> ${firstHold}`;
    expect(rows[0]).toEqual({ n: 2, txs: 1 });
    await expectInvariants(world.sql);
  });

  it('gives every request of a random run the answer one transaction per request gives it (property)', async () => {
    // Two users with the same history: one gets each round as one run, the other one request per transaction.
    let seed = 0x5eed;
    const rand = (k: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % k;
    };
    await grant('prop-run', 100);
    await grant('prop-solo', 100);
    const active: [string, string][] = []; // [run user's hold, solo user's hold], placed by the same request
    for (let round = 0; round < 12; round++) {
      const pairs: [HoldOp, HoldOp][] = [];
      for (let i = 0, size = 1 + rand(12); i < size; i++) {
        if (active.length > 0 && rand(4) === 0) {
          const [a, b] = active[rand(active.length)]!;
          pairs.push([release(a, 'prop-run'), release(b, 'prop-solo')]);
        } else {
          const amount = 1 + rand(40);
          pairs.push([place('prop-run', amount), place('prop-solo', amount)]);
        }
      }
      const run = await applyHoldBatch(world.sql, configs, pairs.map(([a]) => a));
      const solo: HoldOutcome[] = [];
      for (const [, b] of pairs) solo.push(...(await applyHoldBatch(world.sql, configs, [b])));
      expect(run.map(shape), `round ${round}`).toEqual(solo.map(shape));
      run.forEach((o, i) => {
        if (o.kind === 'created') active.push([o.hold.hold_id, (solo[i] as { hold: { hold_id: string } }).hold.hold_id]);
      });
    }
    const held = await world.sql<{ user_id: string; held: bigint }[]>`
      SELECT user_id, sum(amount)::bigint AS held FROM holds WHERE user_id IN ('prop-run', 'prop-solo') AND status = 'active' GROUP BY user_id ORDER BY user_id`;
    expect(held.map((r) => r.held)).toEqual([held[0]!.held, held[0]!.held]);
    expect(held[0]!.held).toBeLessThanOrEqual(100n);
  });
});

describe('hold requests over HTTP, group-committed', () => {
  let tally: InProcessTally;
  let psql: postgres.Sql;
  beforeAll(async () => {
    tally = await startTally(world, ['api', 'worker'], { TALLY_DB_LOCK_TIMEOUT_MS: '300' });
    psql = postgres(`${PG_BASE}/${world.dbName}`, { max: 2, onnotice: () => {} });
  });
  afterAll(async () => {
    await psql?.end({ timeout: 5 });
    await tally?.stop();
  });

  it('concurrent requests share transactions, each with its own answer (B1: 200 holds against 50, plus bad ones)', async () => {
    await grant('http-b1', 500);
    const requests = Array.from({ length: 220 }, (_, i) =>
      i % 11 === 10
        ? tally.http('POST', '/v1/holds', { event_id: id('bad'), user_id: 'http-b1', asset: 'credits', source_type: 'no-such-type', ttl_seconds: 60 })
        : tally.http('POST', '/v1/holds', { event_id: id('b1'), user_id: 'http-b1', asset: 'credits', source_type: 'llm', amount: 10, ttl_seconds: 60 }),
    );
    const answers = await Promise.all(requests);
    const count = (s: number) => answers.filter((a) => a.status === s).length;
    expect([count(201), count(402), count(422)]).toEqual([50, 150, 20]);
    const [row] = await world.sql<{ txs: number }[]>`SELECT count(DISTINCT xmin::text)::int AS txs FROM holds WHERE user_id = 'http-b1'`;
    expect(row!.txs).toBeLessThan(50); // group-committed: fewer transactions than holds
    expect((await tally.http('GET', '/v1/users/http-b1/balances/credits')).body).toMatchObject({ balance: 500, held: 500, available: 0 });
  });

  it('a hold or release that meets a lock timeout (an operator holding the account row) is retried, not failed', async () => {
    await grant('locked-op', 50);
    const kept = await tally.http('POST', '/v1/holds', { event_id: id('k'), user_id: 'locked-op', asset: 'credits', source_type: 'llm', amount: 20, ttl_seconds: 60 });
    const session = await psql.reserve();
    await session`BEGIN`;
    await session`SELECT 1 FROM accounts WHERE user_id = 'locked-op' FOR UPDATE`;
    // Kept longer than two lock timeouts of 300 ms: the first tries fail with lock_not_available (55P03).
    const unlocked = new Promise((r) => setTimeout(r, 800)).then(async () => {
      await session`ROLLBACK`;
      session.release();
    });
    try {
      const [placed, released] = await Promise.all([
        tally.http('POST', '/v1/holds', { event_id: id('l'), user_id: 'locked-op', asset: 'credits', source_type: 'llm', amount: 30, ttl_seconds: 60 }),
        tally.http('DELETE', `/v1/holds/${kept.body.hold_id}`),
      ]);
      expect(placed.status).toBe(201);
      expect(released).toMatchObject({ status: 200, body: { status: 'released' } });
    } finally {
      await unlocked;
    }
    expect((await tally.http('GET', '/v1/users/locked-op/balances/credits')).body).toMatchObject({ held: 30, available: 20 });
    await expectInvariants(world.sql);
  });
});
