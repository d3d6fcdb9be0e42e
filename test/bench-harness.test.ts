import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchBaseline } from '../bench/baselines.ts';
import { runOptional } from '../bench/extras.ts';
import { countNaiveApplied, createNaiveSchema, grantNaive, naiveProcessor } from '../bench/naive.ts';
import { parseBenchOptions } from '../bench/options.ts';
import { parseTps } from '../bench/pgbench.ts';
import { median, renderReport, summarise } from '../bench/report.ts';
import { benchTallyCharges } from '../bench/tally-charges.ts';
import { CHARGE_PRICE, planCharges, type Measurement } from '../bench/workload.ts';
import { createBenchWorld, type BenchWorld } from '../bench/world.ts';
import { PG_BASE, REDIS_URL } from './helpers/env.ts';

// A drain small enough for the suite; the harness is the same code `npm run bench` runs with 50,000.
const opts = parseBenchOptions(['--jobs', '300', '--users', '40', '--runs', '1', '--pg', PG_BASE, '--redis', REDIS_URL, '--concurrency', '64']);
const quiet = () => {};

describe('bench harness', () => {
  it('drains tally charges with the real ledger workers and verifies reconcile and the applied count', async () => {
    const m = await benchTallyCharges(opts, 'uniform', 1, quiet);
    expect(m).toMatchObject({ name: 'tally-uniform', unit: 'mutations/s', count: 300, ok: true });
    expect(m.notes).toBeUndefined();
    expect(m.rate).toBeGreaterThan(0);
    expect(m.detail).toMatch(/^\d+ ledger transactions/);
  });

  it('drains the hot variant (one user) and the naive baseline with every charge applied once', async () => {
    const hot = await benchTallyCharges(opts, 'hot', 1, quiet);
    expect(hot).toMatchObject({ name: 'tally-hot', count: 300, ok: true });
    const naive = await benchBaseline(opts, 'naive', 'hot', 1, quiet);
    expect(naive).toMatchObject({ name: 'naive-hot', count: 300, ok: true });
    const noop = await benchBaseline(opts, 'noop', 'uniform', 1, quiet);
    expect(noop).toMatchObject({ name: 'noop', unit: 'jobs/s', count: 300 });
  });

  it('plans uniform charges over funded users and hot ones on one user, with unique event ids', () => {
    const uniform = planCharges(opts, 'uniform', 't');
    expect(uniform.jobs).toHaveLength(300);
    expect(uniform.grants.size).toBe(40);
    expect(new Set(uniform.jobs.map((j) => j.data.event_id)).size).toBe(300);
    const perUser = new Map<string, number>();
    for (const j of uniform.jobs) perUser.set(String(j.data.user_id), (perUser.get(String(j.data.user_id)) ?? 0) + 1);
    for (const [user, n] of perUser) expect(uniform.grants.get(user)).toBeGreaterThanOrEqual(n * CHARGE_PRICE);
    const hot = planCharges(opts, 'hot', 't');
    expect([...hot.grants]).toEqual([['hot-user', (300 + 10) * CHARGE_PRICE]]);
  });
});

describe('naive baseline (b)', () => {
  let world: BenchWorld;
  beforeAll(async () => {
    world = await createBenchWorld(opts, 'naive_test', { tally: false });
    await createNaiveSchema(world.sql);
    await grantNaive(world.sql, new Map([['ann', 12]]));
  });
  afterAll(async () => {
    await world?.drop();
  });

  it('locks, updates, writes a ledger row and an idempotency row; a replay is a duplicate; too little is rejected', async () => {
    const run = naiveProcessor(world.sql);
    const job = (event_id: string) => ({ data: { event_id, user_id: 'ann', source_type: 'script', source_id: 's' } }) as unknown as Job;
    expect(await run(job('n1'))).toMatchObject({ outcome: 'applied', balance_before: 12, balance_after: 7 });
    expect(await run(job('n1'))).toEqual({ outcome: 'noop_duplicate' });
    expect(await run(job('n2'))).toMatchObject({ outcome: 'applied', balance_after: 2 });
    expect(await run(job('n3'))).toMatchObject({ outcome: 'rejected_insufficient', balance_after: 2 });
    const [acct] = await world.sql`SELECT balance FROM naive_accounts WHERE user_id = 'ann'`;
    expect(acct!.balance).toBe(2n);
    const ledger = await world.sql`SELECT event_id FROM naive_ledger ORDER BY entry_id`;
    expect(ledger.map((r) => r.event_id)).toEqual(['n1', 'n2']);
    expect(await countNaiveApplied(world.sql)).toBe(2);
  });
});

describe('report', () => {
  it('reads tps from pgbench output, old and new wording, and refuses output without it', () => {
    expect(parseTps('number of failed transactions: 0 (0.000%)\nlatency average = 3.8 ms\ninitial connection time = 9.1 ms\ntps = 2101.337 (without initial connection time)\n')).toBeCloseTo(2101.337);
    expect(parseTps('tps = 1999.5 (including connections establishing)\ntps = 2010.25 (excluding connections establishing)\n')).toBeCloseTo(2010.25);
    expect(() => parseTps('connection refused')).toThrow(/no tps/);
  });

  it('takes medians per workload and prints ratios vs (a) and vs (b) of the same distribution, with targets', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    const m = (name: string, rate: number, ok?: boolean): Measurement => ({ name, rate, unit: 'mutations/s', ok });
    const rows = summarise([m('noop', 8000), m('tally-uniform', 5000, true), m('naive-uniform', 1000, true), m('tally-hot', 4000, false), m('naive-hot', 500), m('noop', 6000)]);
    expect(rows.find((r) => r.name === 'noop')!.median).toBe(7000);
    const text = renderReport(rows, opts, { command: 'npm run bench' }, []);
    expect(text).toContain('| tally, uniform (10k users) | 5,000 | mutations/s | 5,000 | 0.71× | 5.00× | ok |');
    expect(text).toContain('| tally, hot (one user) | 4,000 | mutations/s | 4,000 | 0.57× | 8.00× | **FAILED** |');
    expect(text).toContain('- tally uniform ≥ 0.6× (a): 0.71× — met');
    expect(text).toContain('- tally hot ≥ 0.6× (a): 0.57× — **not met**');
    expect(text).toContain('- tally hot ≥ 5× (b): 8.00× — met');
  });

  it('accepts an optional workload result as a Measurement, a list, or a bare rate', async () => {
    const ctx = { opts, run: 1, createWorld: () => Promise.reject(new Error('unused')), log: quiet };
    expect(await runOptional({ name: 'push', run: async () => 1234 as never }, ctx)).toEqual([{ name: 'push', rate: 1234, unit: 'ops/s' }]);
    const many = await runOptional({ name: 'affinity', run: async () => [{ name: 'uniform', rate: 10, unit: 'events/s', ok: true }, { name: 'affinity-hot', rate: 5, unit: 'events/s' }] }, ctx);
    expect(many.map((x) => [x.name, x.rate, x.ok])).toEqual([['affinity-uniform', 10, true], ['affinity-hot', 5, undefined]]);
    await expect(runOptional({ name: 'holds', run: async () => ({ name: 'x' }) as never }, ctx)).rejects.toThrow(/without a numeric rate/);
  });
});
