// Issue 13 item 4 — cost as the books grow: the same charge workload on an empty database and on one preloaded
// (bench/grown-ledger.ts) to 10M ledger entries / 1M accounts, in the same run; then HTTP read latency on the grown
// one (bench/http-reads.ts) and what the exactly-once record (processed_events) costs at that size.
//   npm run bench -- --only grown-books [--grown-entries 10000000 --grown-accounts 1000000] [--runs 1]
import { createDb, type Sql } from '../src/db/client.ts';
import { runReconcile } from '../src/maintenance/reconcile.ts';
import { TallyProducer } from '../src/producers/index.ts';
import { QUEUE } from '../src/queues/common.ts';
import { backendCpu } from './cpu.ts';
import { addInChunks, timeDrain, waitDrained, waitForWorkers, waitUntil, type BulkJob, perJob } from './drain.ts';
import { growLedger, type GrownLedger } from './grown-ledger.ts';
import { benchHttpReads } from './http-reads.ts';
import type { BenchOptions } from './options.ts';
import { startWorkerSet } from './worker-set.ts';
import { CHARGE_PRICE, planCharges, type Measurement, type WorkloadContext } from './workload.ts';
import type { BenchWorld } from './world.ts';

/** Events per batch job (`{type:"batch"}`), when the queues take them. */
const BATCH_EVENTS = 100;
/** Above this many entries reconcile is not run on the grown world after each drain (it reads every row). */
const RECONCILE_MAX_ENTRIES = 2_000_000;

interface Grown {
  world: BenchWorld;
  ledger: GrownLedger;
}
/** The grown world outlives one run (generating it is the slow part); dropped after the last run. */
let grown: Grown | null = null;

export function grownSize(opts: BenchOptions): { entries: number; accounts: number } {
  const entries = opts.grownEntries ?? (opts.quick ? 200_000 : 10_000_000);
  return { entries, accounts: opts.grownAccounts ?? Math.max(1, Math.floor(entries / 10)) };
}

export async function benchGrownBooks(ctx: WorkloadContext): Promise<Measurement[]> {
  const { opts, run, log } = ctx;
  // Minutes of loading at full size: only when asked for by name or by size.
  if (opts.only === null && opts.grownEntries === null) {
    log('grown-books: skipped (ask for it: --only grown-books, or --grown-entries N)');
    return [];
  }
  const size = grownSize(opts);
  if (opts.users > size.accounts) throw new Error(`grown-books: --users ${opts.users} exceeds the grown accounts (${size.accounts})`);
  try {
    if (!grown) {
      const world = await ctx.createWorld('grown');
      try {
        grown = { world, ledger: await growLedger(world.sql, size, log) };
      } catch (err) {
        await world.drop();
        throw err;
      }
      if (size.entries <= RECONCILE_MAX_ENTRIES) {
        const r = await runReconcile(grown.world.sql);
        if (!r.ok) throw new Error(`grown-books: the generated ledger fails reconcile: ${JSON.stringify(r.violations.slice(0, 3))}`);
        log('grown-books: the generated ledger passes reconcile');
      }
    }
    const g = grown;
    const out: Measurement[] = [];
    const label = `${(size.entries / 1e6).toFixed(size.entries < 1e6 ? 1 : 0)}M entries`;
    if (run === 1) out.push({ name: 'grown-books-load', rate: size.entries / g.ledger.seconds, unit: 'entries/s loaded', count: size.entries, seconds: g.ledger.seconds });

    for (const mode of ['single', 'batch'] as const) {
      const empty = await ctx.createWorld(`grown_empty_${mode}`);
      try {
        if (mode === 'batch' && !(await takesBatches(opts, empty))) {
          log('grown-books: the charges queue answers invalid_payload to {type:"batch"}: batched rows skipped (batch jobs not in this build)');
          continue;
        }
        const e = await drainCharges(opts, empty, mode, `e${run}`, log, true);
        const gr = await drainCharges(opts, g.world, mode, `g${run}`, log, size.entries <= RECONCILE_MAX_ENTRIES);
        out.push({ ...e, name: `grown-books-${mode}-empty` }, { ...gr, name: `grown-books-${mode}-${label.replace(/\s.*/, '')}` });
        out.push({
          name: `grown-books-${mode}-ratio`,
          rate: (100 * gr.rate) / e.rate,
          unit: '% of empty (goal ≥ 85)',
          ok: gr.ok && e.ok,
          // On a shared box the rates swing by tens of percent; CPU per charge says whether the work itself grew.
          detail: `${label}: ${Math.round(gr.rate)}/s against ${Math.round(e.rate)}/s empty; CPU per charge: PostgreSQL ${gr.pgCpuMsPerJob?.toFixed(3)} against ${e.pgCpuMsPerJob?.toFixed(3)} ms, workers ${gr.workerCpuMsPerJob?.toFixed(3)} against ${e.workerCpuMsPerJob?.toFixed(3)} ms`,
        });
      } finally {
        await empty.drop();
      }
    }

    out.push(...(await benchHttpReads(opts, g.world, { accounts: size.accounts, until: g.ledger.until, explain: run === 1 }, log)));
    if (run === 1) out.push(...(await processedEventsCost(ctx, g.world.sql, log)));
    return out;
  } finally {
    if (run === opts.runs && grown) {
      await grown.world.drop();
      grown = null;
    }
  }
}

/**
 * The queues take `{type:"batch"}` jobs (issue 13 item 1, another branch) unless a lone probe fails
 * invalid_payload. The probe's one charge is then reverted by nothing: it is a real, tiny grant-less charge.
 */
async function takesBatches(opts: BenchOptions, world: BenchWorld): Promise<boolean> {
  const producer = new TallyProducer({ redis: opts.redisUrl, prefix: world.prefix });
  const charges = producer.queue(QUEUE.charges);
  const set = startWorkerSet(workerConfig(opts, world), opts.procs, world.childEnv);
  try {
    const event = { type: 'charge', event_id: 'probe-batch-0', user_id: 'probe', asset: 'points', source_type: 'script', policy: 'postpaid' };
    const job = await charges.add('batch', { type: 'batch', events: [event] }, { jobId: 'probe-batch' });
    await waitUntil('the batch probe', async () => ['completed', 'failed'].includes(await job.getState()), 60_000);
    const state = await job.getState();
    if (state === 'completed') return true;
    const failed = await charges.getJob('probe-batch');
    return !String(failed?.failedReason ?? '').startsWith('invalid_payload');
  } finally {
    await set.close();
    await producer.close();
  }
}

function workerConfig(opts: BenchOptions, world: BenchWorld) {
  return { kind: 'tally' as const, databaseUrl: world.url, redisUrl: opts.redisUrl, prefix: world.prefix, concurrency: opts.concurrency, batchMax: opts.batchMax, batchParallel: opts.batchParallel, pool: opts.pool };
}

/**
 * bench/tally-charges.ts's uniform workload on a given world: grants through the `grants` queue (not timed), then
 * `opts.jobs` guarded `script` charges drained on the clock — one job per event, or batch jobs of BATCH_EVENTS.
 * Verified: every charge applied exactly once, Σ balances of the charged users moved by grants − charges, and
 * reconcile when asked (it reads the whole ledger).
 */
export async function drainCharges(opts: BenchOptions, world: BenchWorld, mode: 'single' | 'batch', tag: string, log: (m: string) => void, reconcile: boolean): Promise<Measurement> {
  const name = `grown-books-${mode}`;
  const producer = new TallyProducer({ redis: opts.redisUrl, prefix: world.prefix });
  const charges = producer.queue(QUEUE.charges);
  const grantsQ = producer.queue(QUEUE.grants);
  try {
    const plan = planCharges(opts, 'uniform', `${name}-${tag}`);
    const users = [...plan.grants.keys()];
    const before = await balanceOf(world.sql, users);
    const appliedBefore = await countApplied(world.sql);
    await charges.pause();
    const grantJobs: BulkJob[] = [...plan.grants].map(([user_id, amount]) => {
      const event_id = `grown-grant-${name}-${tag}-${user_id}`; // per mode: both drains of a run fund the same users on the grown world
      return { name: 'grant', data: { type: 'grant', event_id, user_id, asset: 'points', amount, source: 'recharge' }, opts: { jobId: event_id } };
    });
    await addInChunks((c) => grantsQ.addBulk(c as never), grantJobs);
    const jobs: BulkJob[] =
      mode === 'single'
        ? plan.jobs
        : chunks(plan.jobs, BATCH_EVENTS).map((c, i) => ({ name: 'batch', data: { type: 'batch', events: c.map((j) => j.data) }, opts: { jobId: `batch-${name}-${tag}-${i}` } }));
    await addInChunks((c) => charges.addBulk(c as never), jobs, mode === 'single' ? 1000 : 10);
    const set = startWorkerSet(workerConfig(opts, world), opts.procs, world.childEnv);
    // Its own one-connection client: backendCpu() leaves out the backend asking, so asking from a pool could leave
    // out one backend at the start and count another's whole life (the load's, minutes of CPU) at the end.
    const probe = createDb(world.url, { max: 1 });
    try {
      await waitForWorkers(charges, Math.max(1, opts.procs));
      await waitDrained(grantsQ);
      const granted = await balanceOf(world.sql, users);
      log(`${name} (${world.dbName}): ${grantJobs.length} grants applied, ${plan.jobs.length} charges in ${jobs.length} jobs; draining`);
      const drain = await timeDrain(charges, { workerCpu: set.cpuMs, pgCpu: () => backendCpu(probe, world.dbName) });
      const applied = (await countApplied(world.sql)) - appliedBefore;
      const after = await balanceOf(world.sql, users);
      const grantsSum = [...plan.grants.values()].reduce((a, b) => a + b, 0);
      const rec = reconcile ? await runReconcile(world.sql) : null;
      const problems = [
        drain.failed > 0 ? `${drain.failed} jobs failed, e.g. ${drain.failedReasons.join(' | ')}` : '',
        applied === plan.jobs.length ? '' : `applied ${applied} of ${plan.jobs.length}`,
        granted - before === BigInt(grantsSum) ? '' : `grants moved Σ balance by ${granted - before}, expected ${grantsSum}`,
        granted - after === BigInt(plan.jobs.length * CHARGE_PRICE) ? '' : `charges moved Σ balance by ${granted - after}, expected ${plan.jobs.length * CHARGE_PRICE}`,
        rec && !rec.ok ? `reconcile: ${rec.violations.length} violations, e.g. ${JSON.stringify(rec.violations[0])}` : '',
      ].filter(Boolean);
      return {
        name,
        rate: applied / drain.seconds,
        unit: 'mutations/s',
        count: applied,
        seconds: drain.seconds,
        ...perJob(drain, plan.jobs.length),
        ok: problems.length === 0,
        notes: problems.join('; ') || undefined,
        detail: rec ? 'reconcile ok' : 'reconcile not run (whole-ledger read at this size)',
      };
    } finally {
      await probe.end({ timeout: 5 });
      await set.close();
    }
  } finally {
    await producer.close();
  }
}

function chunks<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

async function balanceOf(sql: Sql, users: string[]): Promise<bigint> {
  const [r] = await sql<{ s: bigint }[]>`
    SELECT coalesce(sum(balance), 0)::bigint AS s FROM accounts WHERE user_id = ANY(${users}::text[]) AND asset = 'points'`;
  return r!.s;
}

async function countApplied(sql: Sql): Promise<number> {
  const [r] = await sql<{ n: bigint }[]>`SELECT count(*) AS n FROM processed_events WHERE queue = ${QUEUE.charges} AND outcome = 'applied'`;
  return Number(r!.n);
}

/**
 * What keeping processed_events for ever costs: its size at the grown size (heap, primary key, TOAST), and the
 * cost of inserting decisions into it — the ledger's own statement shape, 500 rows a statement, rolled back —
 * against the same on an empty table, in the same run.
 */
async function processedEventsCost(ctx: WorkloadContext, grownSql: Sql, log: (m: string) => void): Promise<Measurement[]> {
  const [sz] = await grownSql<{ rows: bigint; heap: bigint; pkey: bigint; total: bigint; db: bigint }[]>`
    SELECT (SELECT count(*) FROM processed_events) AS rows, pg_relation_size('processed_events') AS heap, pg_database_size(current_database()) AS db,
      pg_relation_size('processed_events_pkey') AS pkey, pg_total_relation_size('processed_events') AS total`;
  const empty = await ctx.createWorld('grown_pe_empty');
  try {
    const emptyUs = await insertCostUs(empty.sql);
    const grownUs = await insertCostUs(grownSql);
    const mb = (b: bigint) => Number(b) / 1048576;
    const detail = `${sz!.rows} rows: heap ${mb(sz!.heap).toFixed(0)} MB, primary key ${mb(sz!.pkey).toFixed(0)} MB, total ${mb(sz!.total).toFixed(0)} MB (${(Number(sz!.total) / Number(sz!.rows)).toFixed(0)} B a decision); insert ${grownUs.toFixed(1)} µs a row against ${emptyUs.toFixed(1)} empty`;
    log(`grown-books: processed_events ${detail}; the whole database ${mb(sz!.db).toFixed(0)} MB`);
    return [
      { name: 'grown-books-processed-events-total-mb', rate: mb(sz!.total), unit: 'MB', count: Number(sz!.rows), detail },
      { name: 'grown-books-processed-events-insert', rate: grownUs, unit: 'µs/row', detail },
      { name: 'grown-books-processed-events-insert-empty', rate: emptyUs, unit: 'µs/row' },
    ];
  } finally {
    await empty.drop();
  }
}

async function insertCostUs(sql: Sql): Promise<number> {
  const rounds = 40;
  const per = 500;
  let ms = 0;
  for (let r = 0; r < rounds; r++) {
    const rows = Array.from({ length: per }, (_, i) => ({
      queue: QUEUE.charges,
      event_id: `pe-cost-${r}-${i}-${Math.random().toString(36).slice(2)}`,
      payload_hash: 'f'.repeat(64),
      result: { outcome: 'applied', transaction_id: String(r * per + i), amount: 5, balance_before: 100, balance_after: 95 },
    }));
    await sql
      .begin(async (tx) => {
        const t = performance.now();
        await tx`
          INSERT INTO processed_events (queue, event_id, payload_hash, outcome, result)
          SELECT queue, event_id, payload_hash, result->>'outcome', result
          FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb) AS r(queue text, event_id text, payload_hash text, result jsonb)`;
        ms += performance.now() - t;
        throw new Rollback();
      })
      .catch((err) => {
        if (!(err instanceof Rollback)) throw err;
      });
  }
  return (ms * 1000) / (rounds * per);
}

class Rollback extends Error {}

