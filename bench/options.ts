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
  /** Worker processes: 0 = workers inside the bench process, N = N child processes. */
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
}

const USAGE = `usage: npm run bench -- [--runs N] [--quick] [--jobs N] [--users N] [--procs N]
  [--concurrency N] [--batch-max N] [--batch-parallel N] [--pool N] [--naive-concurrency N]
  [--pgbench-clients N] [--pgbench-seconds N] [--pgbench-scale N] [--only a,b] [--out FILE] [--profile DIR] [--pg-set name=value]…
  [--grown-entries N] [--grown-accounts N]
workloads for --only: tally-uniform, tally-hot, noop, naive-uniform, naive-hot, pgbench, affinity, push, holds, grown-books, scale-out`;

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
      'pg-set': { type: 'string', multiple: true },
      'grown-entries': { type: 'string' },
      'grown-accounts': { type: 'string' },
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
    procs: int('procs', values.procs, 0, 0),
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
    profile: values.profile ?? null,
    grownEntries: values['grown-entries'] === undefined ? null : int('grown-entries', values['grown-entries'], 0),
    grownAccounts: values['grown-accounts'] === undefined ? null : int('grown-accounts', values['grown-accounts'], 0),
    pgSettings: (values['pg-set'] ?? []).map((kv) => {
      const m = /^([a-z_][a-z0-9_.]*)=(.+)$/i.exec(kv);
      if (!m) throw new Error(`--pg-set wants name=value, got "${kv}"\n${USAGE}`);
      return [m[1]!, m[2]!] as [string, string];
    }),
  };
}

export function wants(opts: BenchOptions, workload: string): boolean {
  return opts.only === null || opts.only.has(workload);
}

/** The server part of a database URL (credentials, host, port) without the database name. */
function serverOf(url: string): string {
  const u = new URL(url);
  u.pathname = '';
  u.search = '';
  return u.toString();
}
