import type { Job, Queue } from 'bullmq';
import { TallyProducer } from '../src/producers/index.ts';
import { QUEUE } from '../src/queues/common.ts';
import { backendCpu } from './cpu.ts';
import { addInChunks, timeDrain, waitUntil, type BulkJob, perJob } from './drain.ts';
import { verifyCharges } from './ledger-verify.ts';
import type { BenchOptions } from './options.ts';
import { profiled } from './profile.ts';
import { childLoopDelay, grantAll, startTally } from './tally-charges.ts';
import { planCharges, type Measurement, type Variant } from './workload.ts';
import { createBenchWorld } from './world.ts';

/**
 * Batched charges (issue 13 item 1): the very charges of tally-uniform / tally-hot, sent as CONTRACT v2 §3 batch
 * jobs — `{type:"batch", events:[…]}` on the `charges` queue, --batch-events (500) per job, jobId `batch-…` —
 * into the paused queue, grants applied first, then the real workers drain them on the clock. Rate = events
 * applied per second, compared with the no-op ceiling's jobs per second (the goal: ≥ 3×).
 *
 * The first batch job runs alone, untimed: a worker that does not know batch jobs fails it `invalid_payload`,
 * and the row is recorded as skipped with that reason instead of failing the run.
 */
export async function benchTallyBatch(opts: BenchOptions, variant: Variant, run: number, log: (m: string) => void): Promise<Measurement> {
  const name = `batch-${variant}`;
  // The batched rows' own worker concurrency (a job holds 500 events: fewer jobs in flight fill a transaction).
  opts = { ...opts, concurrency: opts.batchConcurrency };
  const world = await createBenchWorld(opts, name);
  const producer = new TallyProducer({ redis: opts.redisUrl, prefix: world.prefix });
  const charges = producer.queue(QUEUE.charges);
  try {
    const tag = `${name}-${run}`;
    const plan = planCharges(opts, variant, tag);
    const batches: BulkJob[] = [];
    for (let i = 0; i * opts.batchEvents < plan.jobs.length; i++) {
      const events = plan.jobs.slice(i * opts.batchEvents, (i + 1) * opts.batchEvents).map((j) => j.data);
      const jobId = `batch-${tag}-${i}`;
      batches.push({ name: 'batch', data: { type: 'batch', events }, opts: { jobId } });
    }
    await charges.pause();
    const granted = await grantAll(producer, plan.grants);
    const set = await startTally(opts, world, producer, plan.grants.size);
    try {
      const [first, ...rest] = batches;
      const probe = await runOne(charges, first!);
      if (probe.state === 'failed') {
        const reason = probe.reason.split('\n')[0]!.slice(0, 160);
        log(`${name}: the first batch job failed (${reason}): skipped`);
        return { name, rate: 0, unit: 'events/s', skipped: `batch jobs not supported by these workers: ${reason}` };
      }
      if (rest.length === 0) throw new Error(`${name}: --jobs ${opts.jobs} fills only one batch job; nothing left to time`);
      const timedEvents = plan.jobs.length - (first!.data.events as unknown[]).length;
      await charges.pause();
      await addInChunks((chunk) => charges.addBulk(chunk), rest, 20);
      log(`${name}: ${plan.grants.size} grants, ${rest.length} batch jobs of ${opts.batchEvents} charges enqueued (one more ran untimed)`);
      const { result: drain, loop } = await childLoopDelay(set, () => profiled(opts.profile, name, () => timeDrain(charges, { workerCpu: set.cpuMs, pgCpu: () => backendCpu(world.sql, world.dbName) }), set));
      if (drain.failed > 0) throw new Error(`${name}: ${drain.failed} batch jobs failed, e.g. ${drain.failedReasons.join(' | ')}`);
      const check = await verifyCharges(world.sql, `bench-${tag}-`, plan.jobs.length, granted);
      const results = await batchResultsCheck(charges, batches);
      const problems = [...check.problems, ...results];
      return {
        name,
        rate: timedEvents / drain.seconds,
        unit: 'events/s',
        count: timedEvents,
        seconds: drain.seconds,
        ...perJob(drain, timedEvents),
        ok: problems.length === 0,
        detail: `${rest.length} batch jobs of ${opts.batchEvents}, concurrency ${opts.concurrency}; ${check.commits} ledger transactions; worker event-loop delay ${loop ?? 'n/a (in-process)'}`,
        notes: problems.join('; ') || undefined,
      };
    } finally {
      await set.close();
    }
  } finally {
    await producer.close();
    await world.drop();
  }
}

/** Runs one job through the (resumed) queue and waits for its end. */
async function runOne(queue: Queue, job: BulkJob): Promise<{ state: 'completed' } | { state: 'failed'; reason: string }> {
  await queue.add(job.name, job.data, job.opts);
  await queue.resume();
  const id = String(job.opts?.jobId);
  let state = '';
  await waitUntil(`batch job ${id}`, async () => {
    state = await queue.getJobState(id);
    return state === 'completed' || state === 'failed';
  }, 120_000, 20);
  if (state === 'failed') return { state, reason: (await queue.getJob(id))?.failedReason ?? 'failed' };
  return { state: 'completed' };
}

/**
 * The contract's batch result: `{outcome:"batch", results:[…]}` with one ApplyResult per event, in order. Checks the
 * jobs BullMQ still keeps (removeOnComplete keeps the last 20,000): every one lists every event `applied`.
 */
async function batchResultsCheck(queue: Queue, batches: BulkJob[]): Promise<string[]> {
  let checked = 0;
  const problems: string[] = [];
  for (const b of batches) {
    const job: Job | undefined = await queue.getJob(String(b.opts?.jobId));
    if (!job?.returnvalue) continue;
    checked++;
    const rv = job.returnvalue as { outcome?: string; results?: { outcome?: string }[] };
    const n = (b.data.events as unknown[]).length;
    const applied = rv.results?.filter((r) => r.outcome === 'applied').length ?? 0;
    if (rv.outcome !== 'batch' || rv.results?.length !== n || applied !== n) {
      problems.push(`job ${job.id}: outcome ${rv.outcome}, ${rv.results?.length} results, ${applied} applied of ${n}`);
      if (problems.length >= 3) break;
    }
  }
  if (checked === 0) problems.push('no batch job result left to check');
  return problems;
}
