import type { Sql } from '../src/db/client.ts';
import { TallyProducer, type GrantInput } from '../src/producers/index.ts';
import { QUEUE } from '../src/queues/common.ts';
import { backendCpu } from './cpu.ts';
import { profiled } from './profile.ts';
import { addInChunks, timeDrain, waitDrained, waitForWorkers, waitUntil, perJob } from './drain.ts';
import { verifyCharges } from './ledger-verify.ts';
import type { BenchOptions } from './options.ts';
import { startWorkerSet, type WorkerSet } from './worker-set.ts';
import { planCharges, type Measurement, type Variant } from './workload.ts';
import { createBenchWorld, type BenchWorld } from './world.ts';

/**
 * tally's single-event figure: one BullMQ job per charge, enqueued into the paused `charges` queue exactly like
 * the baselines' jobs (raw `addBulk`, jobId = event id — not the SDK's bulk method, which may batch), balances
 * granted through the real `grants` queue and ledger (not timed), then the real ledger workers drain the charges
 * on the clock. Afterwards the ledger is verified (bench/ledger-verify.ts).
 */
export async function benchTallyCharges(opts: BenchOptions, variant: Variant, run: number, log: (m: string) => void): Promise<Measurement> {
  const name = `tally-${variant}`;
  const world = await createBenchWorld(opts, name);
  const producer = new TallyProducer({ redis: opts.redisUrl, prefix: world.prefix });
  const charges = producer.queue(QUEUE.charges);
  try {
    const tag = `${name}-${run}`;
    const plan = planCharges(opts, variant, tag);
    await charges.pause();
    const granted = await grantAll(producer, plan.grants);
    await addInChunks((chunk) => charges.addBulk(chunk), plan.jobs);
    log(`${name}: ${plan.grants.size} grants and ${plan.jobs.length} charges enqueued; starting workers`);

    const set = await startTally(opts, world, producer, plan.grants.size);
    try {
      const { result: drain, loop } = await childLoopDelay(set, () => profiled(opts.profile, name, () => timeDrain(charges, { workerCpu: set.cpuMs, pgCpu: () => backendCpu(world.sql, world.dbName) }), set));
      if (drain.failed > 0) throw new Error(`${name}: ${drain.failed} charges failed, e.g. ${drain.failedReasons.join(' | ')}`);
      const check = await verifyCharges(world.sql, `bench-${tag}-`, plan.jobs.length, granted);
      return {
        name,
        rate: check.applied / drain.seconds,
        unit: 'mutations/s',
        count: check.applied,
        seconds: drain.seconds,
        ...perJob(drain, plan.jobs.length),
        ok: check.ok,
        detail: `${check.commits} ledger transactions, ${(check.applied / Math.max(1, check.commits)).toFixed(0)} charges each, ${((drain.seconds * 1000) / Math.max(1, check.commits)).toFixed(1)} ms apart; worker event-loop delay ${loop ?? `(bench process) p50 ${drain.loopDelayMs.p50.toFixed(1)} ms, p99 ${drain.loopDelayMs.p99.toFixed(1)} ms`}`,
        notes: check.problems.join('; ') || undefined,
      };
    } finally {
      await set.close();
    }
  } finally {
    await producer.close();
    await world.drop();
  }
}

/** The worker child's event-loop delay over `fn` (p50/p99/max), when the workers run in a child. */
export async function childLoopDelay<T>(set: WorkerSet, fn: () => Promise<T>): Promise<{ result: T; loop: string | null }> {
  const probe = set.probes?.[0];
  if (!probe) return { result: await fn(), loop: null };
  await probe.sample(); // starts the child's histogram
  const result = await fn();
  const eld = (await probe.sample()).eld;
  return { result, loop: eld ? `p50 ${eld.p50.toFixed(1)} ms, p99 ${eld.p99.toFixed(1)} ms, max ${eld.max.toFixed(0)} ms` : null };
}

/** Grants every user its amount through the real grants queue; returns the total granted. */
export async function grantAll(producer: TallyProducer, grants: Map<string, number>): Promise<number> {
  const list: GrantInput[] = [...grants].map(([user_id, amount]) => ({ event_id: `bench-grant-${user_id}`, user_id, asset: 'points', amount, source: 'recharge' }));
  await addInChunks((chunk) => producer.grantBulk(chunk), list);
  return list.reduce((a, g) => a + g.amount, 0);
}

/** tally's workers (placed by --procs), up and idle, with every one of `grants` users' grant applied. */
export async function startTally(opts: BenchOptions, world: BenchWorld, producer: TallyProducer, grants: number): Promise<WorkerSet> {
  const set = startWorkerSet(
    { kind: 'tally', databaseUrl: world.url, redisUrl: opts.redisUrl, prefix: world.prefix, concurrency: opts.concurrency, batchMax: opts.batchMax, batchParallel: opts.batchParallel, pool: opts.pool },
    opts.procs,
    world.childEnv,
  );
  try {
    await waitForWorkers(producer.queue(QUEUE.charges), Math.max(1, opts.procs));
    await waitDrained(producer.queue(QUEUE.grants));
    await waitUntil('grants applied', async () => (await countApplied(world.sql, QUEUE.grants)) === grants, 60_000);
    return set;
  } catch (err) {
    await set.close();
    throw err;
  }
}

export async function countApplied(sql: Sql, queue: string): Promise<number> {
  const [row] = await sql<{ n: bigint }[]>`SELECT count(*) AS n FROM processed_events WHERE queue = ${queue} AND outcome = 'applied'`;
  return Number(row?.n ?? 0n);
}
