import { TallyProducer } from '../src/producers/index.ts';
import { QUEUE } from '../src/queues/common.ts';
import { backendCpu } from './cpu.ts';
import { profiled } from './profile.ts';
import { addInChunks, timeDrain, waitForWorkers } from './drain.ts';
import { countNaiveApplied, createNaiveSchema, grantNaive } from './naive.ts';
import type { BenchOptions } from './options.ts';
import { startWorkerSet, type WorkerKind } from './worker-set.ts';
import { planCharges, type Measurement, type Variant } from './workload.ts';
import { createBenchWorld } from './world.ts';

/**
 * Baselines (a) and (b) drain the very same jobs (same payloads, ids, job options, queue name) as tally,
 * enqueued the same way into a paused queue, with workers in the same place (in-process or --procs children).
 * (a) no-op processor at tally's concurrency: the ceiling for one BullMQ job per event.
 * (b) naive processor, one transaction per job, at --naive-concurrency (default: the pool size).
 */
export async function benchBaseline(opts: BenchOptions, kind: Exclude<WorkerKind, 'tally'>, variant: Variant, run: number, log: (m: string) => void): Promise<Measurement> {
  const name = kind === 'noop' ? 'noop' : `naive-${variant}`;
  const world = await createBenchWorld(opts, name, { tally: false });
  const producer = new TallyProducer({ redis: opts.redisUrl, prefix: world.prefix });
  const charges = producer.queue(QUEUE.charges);
  try {
    const plan = planCharges(opts, variant, `${name}-${run}`);
    if (kind === 'naive') {
      await createNaiveSchema(world.sql);
      await grantNaive(world.sql, plan.grants);
    }
    await charges.pause();
    await addInChunks((chunk) => charges.addBulk(chunk.map((j) => ({ name: j.name, data: j.data, opts: { jobId: String(j.data.event_id) } }))), plan.jobs);
    log(`${name}: ${plan.jobs.length} jobs enqueued; starting workers`);

    const concurrency = kind === 'naive' ? opts.naiveConcurrency : opts.concurrency;
    const set = startWorkerSet(
      { kind, databaseUrl: world.url, redisUrl: opts.redisUrl, prefix: world.prefix, concurrency, batchMax: opts.batchMax, batchParallel: opts.batchParallel, pool: opts.pool },
      opts.procs,
      world.childEnv,
    );
    try {
      await waitForWorkers(charges, Math.max(1, opts.procs));
      const drain = await profiled(opts.profile, name, () => timeDrain(charges, { workerCpu: set.cpuMs, pgCpu: () => backendCpu(world.sql, world.dbName) }));
      if (drain.failed > 0) throw new Error(`${name}: ${drain.failed} jobs failed, e.g. ${drain.failedReasons.join(' | ')}`);
      const count = kind === 'naive' ? await countNaiveApplied(world.sql) : plan.jobs.length;
      const ok = count === plan.jobs.length;
      return {
        name,
        rate: count / drain.seconds,
        unit: kind === 'noop' ? 'jobs/s' : 'mutations/s',
        count,
        seconds: drain.seconds,
        workerCpuMsPerJob: drain.workerCpuMs / plan.jobs.length,
        pgCpuMsPerJob: drain.pgCpuMs / plan.jobs.length,
        redisCpuMsPerJob: drain.redisCpuMs / plan.jobs.length,
        ok: kind === 'naive' ? ok : undefined,
        notes: ok ? undefined : `applied ${count} of ${plan.jobs.length}`,
      };
    } finally {
      await set.close();
    }
  } finally {
    await producer.close();
    await world.drop();
  }
}
