import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchBaseline, benchCeiling, ceilingCandidates, type CeilingState } from '../bench/baselines.ts';
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
  });

  it('probes every no-op candidate once, keeps the fastest as the ceiling and measures it fully each run', async () => {
    const small = { ...opts, noopConcurrencies: [8, 64], probeJobs: 100 };
    expect(ceilingCandidates(small)).toEqual([{ procs: 1, concurrency: 8 }, { procs: 1, concurrency: 64 }, { procs: 0, concurrency: 64 }]);
    const state: CeilingState = { probes: [] };
    const first = await benchCeiling(small, 1, state, quiet);
    expect(state.probes.map((p) => [p.config, p.jobs])).toEqual(ceilingCandidates(small).map((c) => [c, 100]));
    const best = state.probes.reduce((a, b) => (b.rate > a.rate ? b : a)).config;
    expect(state.winner).toEqual(best);
    expect(first).toMatchObject({ name: 'noop', unit: 'jobs/s', count: 300 });
    expect(first.config).toMatch(/concurrency (8|64)$/);
    expect(first.workerCpuMsPerJob).toBeGreaterThan(0);
    await benchCeiling(small, 2, state, quiet);
    expect(state.probes).toHaveLength(3); // not probed again
  }, 180_000); // five worker processes started, one after the other

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
    expect(text).toContain('| (a) BullMQ no-op jobs (best config) | 7,000 | mutations/s | 8,000, 6,000 |  |  |  |');
    expect(text).toContain('| tally, uniform (10k users) | 5,000 | mutations/s | 5,000 | 0.71× | 5.00× | ok |');
    expect(text).toContain('| tally, hot (one user) | 4,000 | mutations/s | 4,000 | 0.57× | 8.00× | **FAILED** |');
    expect(text).toContain('- tally uniform vs (a) ≥ 0.6×: 0.71× — met');
    expect(text).toContain('- tally hot vs (a) ≥ 0.6×: 0.57× — **not met**');
    expect(text).toContain('- tally hot vs (b) ≥ 5×: 8.00× — met');
  });

  it('shows batched events/s against (a) with the 3× target, a skipped row with its reason, latencies without a ratio', () => {
    const rows = summarise([
      { name: 'noop', rate: 10_000, unit: 'jobs/s', workerCpuMsPerJob: 0.05, redisCpuMsPerJob: 0.04, pgCpuMsPerJob: 0 },
      { name: 'batch-uniform', rate: 35_000, unit: 'events/s', ok: true, workerCpuMsPerJob: 0.01, pgCpuMsPerJob: 0.02, redisCpuMsPerJob: 0.0 },
      { name: 'batch-hot', rate: 0, unit: 'events/s', skipped: 'batch jobs not supported by these workers: invalid_payload' },
      { name: 'latency-p99@50%', rate: 42, unit: 'ms add→applied', versus: null, ok: true },
    ]);
    const text = renderReport(rows, opts, {}, []);
    expect(text).toContain('| tally batched, uniform (10k users) | 35,000 | events/s | 35,000 | 3.50× |  | ok |');
    expect(text).toContain('| tally batched, hot (one user) | — | events/s |  |  |  | skipped: batch jobs not supported by these workers: invalid_payload |');
    expect(text).toContain('| latency-p99@50% | 42.0 | ms add→applied | 42.0 |  |  | ok |');
    expect(text).toContain('| tally batched, uniform (10k users) | 0.010 | 0.020 | 0.000 | 0.030 | 0.33× |');
    expect(text).toContain('- batched charges uniform (events/s) vs (a) ≥ 3×: 3.50× — met');
    expect(text).toContain('- batched charges hot ≥ 3× (a): not measured (batch jobs not supported by these workers: invalid_payload)');
    expect(text).toContain('- latency p99 at 50 % of peak < 50 ms: 42.0 ms — met');
  });

  it('accepts an optional workload result as a Measurement, a list, or a bare rate', async () => {
    const ctx = { opts, run: 1, createWorld: () => Promise.reject(new Error('unused')), log: quiet };
    expect(await runOptional({ name: 'push', run: async () => 1234 as never }, ctx)).toEqual([{ name: 'push', rate: 1234, unit: 'ops/s' }]);
    const many = await runOptional({ name: 'affinity', run: async () => [{ name: 'uniform', rate: 10, unit: 'events/s', ok: true }, { name: 'affinity-hot', rate: 5, unit: 'events/s' }] }, ctx);
    expect(many.map((x) => [x.name, x.rate, x.ok])).toEqual([['affinity-uniform', 10, true], ['affinity-hot', 5, undefined]]);
    await expect(runOptional({ name: 'holds', run: async () => ({ name: 'x' }) as never }, ctx)).rejects.toThrow(/without a numeric rate/);
  });
});
