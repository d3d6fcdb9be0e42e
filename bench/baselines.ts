import type { Queue } from 'bullmq';
import { TallyProducer } from '../src/producers/index.ts';
import { QUEUE } from '../src/queues/common.ts';
import { backendCpu } from './cpu.ts';
import { profiled } from './profile.ts';
import { addInChunks, perJob, timeDrain, waitForWorkers, type Drain } from './drain.ts';
import { countNaiveApplied, createNaiveSchema, grantNaive } from './naive.ts';
import type { BenchOptions } from './options.ts';
import { startWorkerSet, type WorkerKind } from './worker-set.ts';
import { planCharges, type ChargePlan, type Measurement, type Variant } from './workload.ts';
import { createBenchWorld, type BenchWorld } from './world.ts';

/**
 * Baselines (a) and (b) drain the very same jobs (same payloads, ids, job options, queue name) as tally,
 * enqueued the same way into a paused queue.
 * (a) no-op processor: the ceiling for one BullMQ job per event — the best of several placements and
 *     concurrencies (benchCeiling), not one guess.
 * (b) naive processor, one transaction per job, at --naive-concurrency (default: the pool size), placed like tally.
 */

/** Where (a)'s workers run and how many jobs each holds: procs 0 = inside the bench process. */
export interface NoopConfig {
  procs: number;
  concurrency: number;
}

export const noopLabel = (c: NoopConfig) => `${c.procs === 0 ? 'in the bench process' : c.procs === 1 ? 'own process' : `${c.procs} processes`}, concurrency ${c.concurrency}`;

interface DrainResult {
  drain: Drain;
  jobs: number;
}

/** Enqueues `plan` into the paused charges queue of `world`, starts the workers, times the drain, stops them. */
async function drainWith(opts: BenchOptions, world: BenchWorld, charges: Queue, kind: Exclude<WorkerKind, 'tally'>, plan: ChargePlan, placement: NoopConfig, name: string, profile: boolean): Promise<DrainResult> {
  await charges.pause();
  await addInChunks((chunk) => charges.addBulk(chunk.map((j) => ({ name: j.name, data: j.data, opts: { jobId: String(j.data.event_id) } }))), plan.jobs);
  const set = startWorkerSet(
    { kind, databaseUrl: world.url, redisUrl: opts.redisUrl, prefix: world.prefix, concurrency: placement.concurrency, batchMax: opts.batchMax, batchParallel: opts.batchParallel, pool: opts.pool },
    placement.procs,
    world.childEnv,
  );
  try {
    await waitForWorkers(charges, Math.max(1, placement.procs));
    const timed = () => timeDrain(charges, { workerCpu: set.cpuMs, pgCpu: () => backendCpu(world.sql, world.dbName) });
    const drain = profile ? await profiled(opts.profile, name, timed, set) : await timed();
    if (drain.failed > 0) throw new Error(`${name}: ${drain.failed} jobs failed, e.g. ${drain.failedReasons.join(' | ')}`);
    return { drain, jobs: plan.jobs.length };
  } finally {
    await set.close();
  }
}

/** (b): the naive worker, placed like tally's workers (--procs). */
export async function benchBaseline(opts: BenchOptions, kind: 'naive', variant: Variant, run: number, log: (m: string) => void): Promise<Measurement> {
  const name = `naive-${variant}`;
  const world = await createBenchWorld(opts, name, { tally: false });
  const producer = new TallyProducer({ redis: opts.redisUrl, prefix: world.prefix });
  const charges = producer.queue(QUEUE.charges);
  try {
    const plan = planCharges(opts, variant, `${name}-${run}`);
    await createNaiveSchema(world.sql);
    await grantNaive(world.sql, plan.grants);
    log(`${name}: enqueueing ${plan.jobs.length} jobs`);
    const { drain } = await drainWith(opts, world, charges, kind, plan, { procs: opts.procs, concurrency: opts.naiveConcurrency }, name, true);
    const count = await countNaiveApplied(world.sql);
    const ok = count === plan.jobs.length;
    return {
      name,
      rate: count / drain.seconds,
      unit: 'mutations/s',
      count,
      seconds: drain.seconds,
      ...perJob(drain, plan.jobs.length),
      ok,
      notes: ok ? undefined : `applied ${count} of ${plan.jobs.length}`,
    };
  } finally {
    await producer.close();
    await world.drop();
  }
}

/** The ceiling's probes, kept across runs: the winner is chosen once (run 1) and measured fully every run. */
export interface CeilingState {
  winner?: NoopConfig;
  probes: { config: NoopConfig; rate: number; jobs: number }[];
}

export function ceilingCandidates(opts: BenchOptions): NoopConfig[] {
  return [
    ...opts.noopConcurrencies.map((concurrency) => ({ procs: 1, concurrency })),
    // The harness's old baseline (workers in the bench process at tally's concurrency), still a candidate: the
    // ceiling is the best BullMQ did on this box, wherever that was.
    { procs: 0, concurrency: opts.concurrency },
  ];
}

/**
 * (a) the honest ceiling: short probes (--probe-jobs no-op jobs) of every candidate placement and concurrency on
 * run 1, then the fastest measured fully (--jobs) on every run. The row names the winner and the probes.
 */
export async function benchCeiling(opts: BenchOptions, run: number, state: CeilingState, log: (m: string) => void): Promise<Measurement> {
  const world = await createBenchWorld(opts, 'noop', { tally: false });
  const producer = new TallyProducer({ redis: opts.redisUrl, prefix: world.prefix });
  const charges = producer.queue(QUEUE.charges);
  try {
    if (!state.winner) {
      const candidates = ceilingCandidates(opts);
      const probeOpts = { ...opts, jobs: Math.min(opts.probeJobs, opts.jobs) };
      for (const [i, config] of candidates.entries()) {
        const plan = planCharges(probeOpts, 'uniform', `noop-probe-${i}`);
        const { drain, jobs } = await drainWith(opts, world, charges, 'noop', plan, config, `noop-probe-${i}`, false);
        const rate = jobs / drain.seconds;
        state.probes.push({ config, rate, jobs });
        log(`  noop probe, ${noopLabel(config)}: ${Math.round(rate)} jobs/s (${jobs} jobs)`);
      }
      state.winner = state.probes.reduce((a, b) => (b.rate > a.rate ? b : a)).config;
      log(`  noop ceiling: ${noopLabel(state.winner)}`);
    }
    const plan = planCharges(opts, 'uniform', `noop-${run}`);
    const { drain, jobs } = await drainWith(opts, world, charges, 'noop', plan, state.winner, 'noop', true);
    return {
      name: 'noop',
      rate: jobs / drain.seconds,
      unit: 'jobs/s',
      count: jobs,
      seconds: drain.seconds,
      ...perJob(drain, jobs),
      config: noopLabel(state.winner),
      detail: `probes: ${state.probes.map((p) => `${noopLabel(p.config)} ${Math.round(p.rate)}/s`).join('; ')}`,
    };
  } finally {
    await producer.close();
    await world.drop();
  }
}
