import type { BenchOptions } from './options.ts';
import type { BulkJob } from './drain.ts';
import type { BenchWorld } from './world.ts';

/** One measured figure of one run. `rate` is per second: applied mutations, jobs, or transactions. */
export interface Measurement {
  /** Row key in the report, e.g. `tally-uniform`. */
  name: string;
  rate: number;
  /** What `rate` counts, e.g. `mutations/s`, `jobs/s`, `tps`. */
  unit: string;
  count?: number;
  seconds?: number;
  /** CPU per job during the drain, ms: the worker process(es), and the PostgreSQL backends serving them. */
  workerCpuMsPerJob?: number;
  pgCpuMsPerJob?: number;
  redisCpuMsPerJob?: number;
  /** Older name of workerCpuMsPerJob. */
  cpuMsPerJob?: number;
  /** Diagnostics for the log (e.g. transactions and batch size), not for the table. */
  detail?: string;
  /** The configuration that produced the figure, when it was chosen by the run (e.g. the no-op ceiling's winner). */
  config?: string;
  /** Not measured, and why (e.g. batch jobs not implemented on this branch): a row with a note, not a failure. */
  skipped?: string;
  /** What the row is compared with in the report (a row name, default `noop`), e.g. latency rows with nothing. */
  versus?: string | null;
  /** Invariants verified after the drain (undefined: nothing to verify). */
  ok?: boolean;
  notes?: string;
}

/**
 * What an optional workload module (bench/affinity.ts `benchAffinity`, bench/push.ts `benchPush`,
 * bench/holds.ts `benchHolds`) receives once per run, and should resolve to: one Measurement or several.
 */
export interface WorkloadContext {
  opts: BenchOptions;
  /** 1-based run number. */
  run: number;
  /** A fresh migrated database (example config applied) and BullMQ prefix; call `drop()` when done. */
  createWorld(label: string): Promise<BenchWorld>;
  log(message: string): void;
}
export type Workload = (ctx: WorkloadContext) => Promise<Measurement | Measurement[]>;

export type Variant = 'uniform' | 'hot';

/** Price of one charge under the example config (`script` is fixed at 5 points). */
export const CHARGE_PRICE = 5;

/** A tiny seeded PRNG, so every run and every system gets the same sequence of users. */
export function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

export interface ChargePlan {
  jobs: BulkJob[];
  /** What each user must be granted first so that every guarded charge applies. */
  grants: Map<string, number>;
}

/** One guarded `script` charge as a BullMQ job (jobId = event id), the shape every charge workload enqueues. */
export function chargeJob(event_id: string, user_id: string, i: number): BulkJob {
  return {
    name: 'charge',
    data: { type: 'charge', event_id, user_id, asset: 'points', source_type: 'script', source_id: `s-${i % 97}`, policy: 'guarded' },
    opts: { jobId: event_id },
  };
}

/**
 * The charges of one drain: `guarded` `script` charges (priced by the config, not given an amount), users
 * uniform over `opts.users` or all on one hot user; event ids unique per drain.
 */
export function planCharges(opts: BenchOptions, variant: Variant, tag: string): ChargePlan {
  const rand = xorshift(0x7a11e);
  const perUser = new Map<string, number>();
  const jobs: BulkJob[] = [];
  for (let i = 0; i < opts.jobs; i++) {
    const user = variant === 'hot' ? 'hot-user' : `user-${Math.floor(rand() * opts.users)}`;
    perUser.set(user, (perUser.get(user) ?? 0) + 1);
    jobs.push(chargeJob(`bench-${tag}-${i}`, user, i));
  }
  // Every user gets a grant, even one the dice skipped: the uniform setup is "10,000 funded users".
  if (variant === 'uniform') for (let u = 0; u < opts.users; u++) perUser.set(`user-${u}`, perUser.get(`user-${u}`) ?? 0);
  const grants = new Map([...perUser].map(([user, n]) => [user, (n + 10) * CHARGE_PRICE]));
  return { jobs, grants };
}
