import { parseArgs } from 'node:util';
import { parseEnv } from '../src/config/env.ts';

/**
 * What one `npm run bench` measures and how. Defaults follow issue 2; the tuning knobs default to what tally
 * itself would use (TALLY_* from the environment, parsed by src/config/env.ts like tally does).
 */
export interface BenchOptions {
  /** Repetitions of every measurement; the report shows medians. */
  runs: number;
  /** Charges per drain (≥ 50,000 for the real figure). */
  jobs: number;
  /** Distinct users of the uniform workload. */
  users: number;
  /** Worker processes of tally and the naive baseline: 0 = inside the bench process, N = N child processes
   *  (default 1: tally's workers run in their own process, as `tally start --role worker` does). */
  procs: number;
  /** BullMQ concurrency per worker process (tally and the no-op baseline). */
  concurrency: number;
  batchMax: number;
  batchParallel: number;
  /** PostgreSQL connections per worker process (tally and the naive baseline). */
  pool: number;
  /** The naive baseline's BullMQ concurrency (one connection per in-flight job is all it can use). */
  naiveConcurrency: number;
  /** pgbench: clients, threads, seconds, scale. */
  pgbenchClients: number;
  pgbenchThreads: number;
  pgbenchSeconds: number;
  pgbenchScale: number;
  /** Server roots: each workload gets its own database under PG_BASE and its own prefix on REDIS_URL. */
  pgBase: string;
  redisUrl: string;
  /** Only these workloads (comma list of names), default all. */
  only: Set<string> | null;
  quick: boolean;
  /** Where to write the markdown report besides stdout. */
  out: string | null;
  /** PostgreSQL settings for the bench databases (ALTER DATABASE … SET), e.g. plan_cache_mode=force_custom_plan. */
  pgSettings: [string, string][];
  /** Directory for V8 CPU profiles of each timed drain (bench/profile.ts), or null. */
  profile: string | null;
  /** bench/grown-books.ts: the preloaded ledger's size (entries, accounts); null = not asked for. */
  grownEntries: number | null;
  grownAccounts: number | null;
  /** The no-op ceiling's candidate concurrencies (each in its own process; plus in-process at --concurrency). */
  noopConcurrencies: number[];
  /** No-op jobs per ceiling probe (the winner is then measured with --jobs). */
  probeJobs: number;
  /** Events per batch job of the batched-charges workload (CONTRACT v2 §3 "Batch jobs": 1–1000). */
  batchEvents: number;
  /** tally's worker concurrency for the batched rows (jobs, not events, in flight), default --concurrency. */
  batchConcurrency: number;
  /** The soak (--soak): events through one worker process, and how often its RSS and loop delay are sampled. */
  soak: boolean;
  soakEvents: number;
  sampleSeconds: number;
  /** The latency part (--latency): seconds of open-loop arrivals per load level, and the levels (fractions of peak). */
  latency: boolean;
  latencySeconds: number;
  latencyLevels: number[];
  /** Where the soak writes its samples (JSON) and its plot (SVG). */
  soakSvg: string;
}

const USAGE = `usage: npm run bench -- [--runs N] [--quick] [--jobs N] [--users N] [--procs N]
  [--concurrency N] [--batch-max N] [--batch-parallel N] [--pool N] [--naive-concurrency N]
  [--noop-concurrency 50,100,250,1000] [--probe-jobs N] [--batch-events N] [--batch-concurrency N]
  [--pgbench-clients N] [--pgbench-seconds N] [--pgbench-scale N] [--only a,b] [--out FILE] [--profile DIR | --cpu-prof DIR] [--pg-set name=value]…
  [--soak] [--soak-events N] [--sample-seconds N] [--soak-svg FILE]
  [--latency] [--latency-seconds N] [--latency-levels 0.25,0.5,0.75] [--grown-entries N] [--grown-accounts N]
workloads for --only: noop, tally-uniform, tally-hot, naive-uniform, naive-hot, batch-uniform, batch-hot, pgbench,
  affinity, push, holds, scale-out, grown-books (and the optional modules), soak, latency. --soak / --latency add those parts to the default set;
  naming them in --only runs them alone (--only soak); latency uses tally-uniform's rate of the same run as its peak.`;

export function parseBenchOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      quick: { type: 'boolean', default: false },
      jobs: { type: 'string' },
      users: { type: 'string' },
      procs: { type: 'string' },
      concurrency: { type: 'string' },
      'batch-max': { type: 'string' },
      'batch-parallel': { type: 'string' },
      pool: { type: 'string' },
      'naive-concurrency': { type: 'string' },
      'pgbench-clients': { type: 'string' },
      'pgbench-threads': { type: 'string' },
      'pgbench-seconds': { type: 'string' },
      'pgbench-scale': { type: 'string' },
      pg: { type: 'string' },
      redis: { type: 'string' },
      only: { type: 'string' },
      out: { type: 'string' },
      profile: { type: 'string' },
      'cpu-prof': { type: 'string' },
      'pg-set': { type: 'string', multiple: true },
      'grown-entries': { type: 'string' },
      'grown-accounts': { type: 'string' },
      'noop-concurrency': { type: 'string' },
      'probe-jobs': { type: 'string' },
      'batch-events': { type: 'string' },
      'batch-concurrency': { type: 'string' },
      soak: { type: 'boolean', default: false },
      'soak-events': { type: 'string' },
      'sample-seconds': { type: 'string' },
      'soak-svg': { type: 'string' },
      latency: { type: 'boolean', default: false },
      'latency-seconds': { type: 'string' },
      'latency-levels': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const env = parseEnv(process.env);
  const quick = values.quick ?? false;
  const int = (name: string, v: string | undefined, dflt: number, min = 1): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}\n${USAGE}`);
    return n;
  };
  const pool = int('pool', values.pool, env.TALLY_DB_POOL);
  return {
    runs: int('runs', values.runs, quick ? 1 : 3),
    jobs: int('jobs', values.jobs, quick ? 5_000 : 50_000),
    users: int('users', values.users, quick ? 1_000 : 10_000),
    procs: int('procs', values.procs, 1, 0),
    concurrency: int('concurrency', values.concurrency, env.TALLY_WORKER_CONCURRENCY),
    batchMax: int('batch-max', values['batch-max'], env.TALLY_BATCH_MAX),
    batchParallel: int('batch-parallel', values['batch-parallel'], env.TALLY_BATCH_PARALLEL),
    pool,
    naiveConcurrency: int('naive-concurrency', values['naive-concurrency'], pool),
    pgbenchClients: int('pgbench-clients', values['pgbench-clients'], 8),
    pgbenchThreads: int('pgbench-threads', values['pgbench-threads'], 2),
    pgbenchSeconds: int('pgbench-seconds', values['pgbench-seconds'], quick ? 3 : 10),
    pgbenchScale: int('pgbench-scale', values['pgbench-scale'], 1),
    pgBase: (values.pg ?? serverOf(env.DATABASE_URL)).replace(/\/$/, ''),
    redisUrl: values.redis ?? env.REDIS_URL,
    only: values.only ? new Set(values.only.split(',').map((s) => s.trim())) : null,
    quick,
    out: values.out ?? null,
    grownEntries: values['grown-entries'] === undefined ? null : int('grown-entries', values['grown-entries'], 0),
    grownAccounts: values['grown-accounts'] === undefined ? null : int('grown-accounts', values['grown-accounts'], 0),
    profile: values.profile ?? values['cpu-prof'] ?? null,
    pgSettings: (values['pg-set'] ?? []).map((kv) => {
      const m = /^([a-z_][a-z0-9_.]*)=(.+)$/i.exec(kv);
      if (!m) throw new Error(`--pg-set wants name=value, got "${kv}"\n${USAGE}`);
      return [m[1]!, m[2]!] as [string, string];
    }),
    noopConcurrencies: list('noop-concurrency', values['noop-concurrency'], [50, 100, 250, 1000], (n) => Number.isInteger(n) && n >= 1),
    probeJobs: int('probe-jobs', values['probe-jobs'], quick ? 3_000 : 20_000),
    batchEvents: int('batch-events', values['batch-events'], 500),
    batchConcurrency: int('batch-concurrency', values['batch-concurrency'], int('concurrency', values.concurrency, env.TALLY_WORKER_CONCURRENCY)),
    soak: values.soak ?? false,
    soakEvents: int('soak-events', values['soak-events'], 1_000_000),
    sampleSeconds: int('sample-seconds', values['sample-seconds'], 2),
    soakSvg: values['soak-svg'] ?? 'docs/soak.svg',
    latency: values.latency ?? false,
    latencySeconds: int('latency-seconds', values['latency-seconds'], quick ? 5 : 20),
    latencyLevels: list('latency-levels', values['latency-levels'], [0.25, 0.5, 0.75], (n) => n > 0 && n <= 1.5),
  };
}

function list(name: string, v: string | undefined, dflt: number[], valid: (n: number) => boolean): number[] {
  if (v === undefined) return dflt;
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (xs.length === 0 || !xs.every(valid)) throw new Error(`--${name}: not a valid list "${v}"\n${USAGE}`);
  return xs;
}

/** The default parts run unless --only names others; soak and latency run when flagged or named in --only. */
export function wants(opts: BenchOptions, workload: string): boolean {
  if (workload === 'soak') return opts.soak || (opts.only?.has('soak') ?? false);
  if (workload === 'latency') return opts.latency || (opts.only?.has('latency') ?? false);
  return opts.only === null || opts.only.has(workload);
}

/** The server part of a database URL (credentials, host, port) without the database name. */
function serverOf(url: string): string {
  const u = new URL(url);
  u.pathname = '';
  u.search = '';
  return u.toString();
}
