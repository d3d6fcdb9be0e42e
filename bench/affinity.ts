// The affinity workload for `npm run bench` (loaded by bench/extras.ts): events/s through the real
// `affinity-events` queue and the group-committed affinity worker, uniform over many devices and all on
// one hot device. `npm run bench -- --only affinity --quick` runs just this.
import { applyConfig, readConfigFile } from '../src/config/store.ts';
import { ConfigCache } from '../src/config/store.ts';
import { EXAMPLE_CONFIG } from '../src/cli/dev.ts';
import { checkAffinity } from '../src/affinity/reconcile.ts';
import { createDb } from '../src/db/client.ts';
import { createLogger } from '../src/log.ts';
import { TallyProducer, type AffinityEventInput } from '../src/producers/index.ts';
import { QUEUE } from '../src/queues/common.ts';
import { createRedis } from '../src/redis.ts';
import { startAffinityWorker } from '../src/workers/affinity-worker.ts';
import { backendCpu } from './cpu.ts';
import { addInChunks, timeDrain, waitForWorkers, perJob } from './drain.ts';
import { startChildren, type WorkerSet } from './worker-set.ts';
import type { Measurement, Variant, WorkloadContext } from './workload.ts';
import type { BenchWorld } from './world.ts';

/** A rule with no cooldown and no caps, and room to grow: every event is applied, the full write path. */
async function applyBenchConfig(world: BenchWorld): Promise<void> {
  const doc = (await readConfigFile(EXAMPLE_CONFIG)) as { affinity: { settings: Record<string, unknown>; rules: Record<string, unknown> } };
  doc.affinity.settings = { ...doc.affinity.settings, max_affinity: 2_147_483_647, global_daily_cap: undefined };
  delete doc.affinity.settings.global_daily_cap;
  doc.affinity.rules.bench = { delta: 1, cooldown_seconds: 0 };
  await applyConfig(world.sql, doc);
}

function plan(jobs: number, users: number, variant: Variant, tag: string): AffinityEventInput[] {
  return Array.from({ length: jobs }, (_, i) => {
    const u = variant === 'hot' ? 0 : i % users;
    return { event_id: `bench-${tag}-${i}`, user_id: `u${u}`, device_id: variant === 'hot' ? 'hot' : `d${u % 3}`, rule_key: 'bench', source: 'bench' };
  });
}

function startInProcess(world: BenchWorld, ctx: WorkloadContext): WorkerSet {
  const sql = createDb(world.url, { max: ctx.opts.pool });
  const redis = createRedis(ctx.opts.redisUrl);
  const w = startAffinityWorker({
    sql,
    redis,
    prefix: world.prefix,
    configs: new ConfigCache(),
    log: createLogger('warn', 'bench-affinity'),
    concurrency: ctx.opts.concurrency,
    batchMax: ctx.opts.batchMax,
    batchParallel: ctx.opts.batchParallel,
  });
  return {
    async close() {
      await w.close();
      await sql.end({ timeout: 5 });
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

async function one(ctx: WorkloadContext, variant: Variant): Promise<Measurement> {
  const name = `affinity-${variant}`;
  const world = await ctx.createWorld(name);
  const producer = new TallyProducer({ redis: ctx.opts.redisUrl, prefix: world.prefix });
  const queue = producer.queue(QUEUE.affinityEvents);
  try {
    await applyBenchConfig(world);
    const events = plan(ctx.opts.jobs, ctx.opts.users, variant, `${name}-${ctx.run}`);
    await queue.pause();
    // One job per event (jobId = event id), like the charge rows: not the SDK's bulk method, which may batch.
    await addInChunks((chunk) => queue.addBulk(chunk.map((e) => ({ name: 'affinity.event', data: { ...e, type: 'affinity.event' }, opts: { jobId: e.event_id } }))), events);
    ctx.log(`${name}: ${events.length} events enqueued; starting workers`);
    const set = ctx.opts.procs === 0 ? startInProcess(world, ctx) : startChildren({ kind: 'tally', databaseUrl: world.url, redisUrl: ctx.opts.redisUrl, prefix: world.prefix, concurrency: ctx.opts.concurrency, batchMax: ctx.opts.batchMax, batchParallel: ctx.opts.batchParallel, pool: ctx.opts.pool }, ctx.opts.procs, world.childEnv);
    try {
      await waitForWorkers(queue, Math.max(1, ctx.opts.procs));
      const drain = await timeDrain(queue, { workerCpu: set.cpuMs, pgCpu: () => backendCpu(world.sql, world.dbName) });
      const [row] = await world.sql<{ applied: bigint; commits: bigint; total: bigint }[]>`
        SELECT count(*) FILTER (WHERE outcome = 'applied') AS applied, count(DISTINCT xmin::text) AS commits,
          (SELECT coalesce(sum(value), 0) FROM affinity_devices)::bigint AS total
        FROM processed_events WHERE queue = ${QUEUE.affinityEvents}`;
      const applied = Number(row!.applied);
      const violations = await checkAffinity(world.sql);
      const problems = [
        drain.failed > 0 ? `${drain.failed} failed, e.g. ${drain.failedReasons.join(' | ')}` : '',
        applied === events.length ? '' : `applied ${applied} of ${events.length}`,
        Number(row!.total) === events.length ? '' : `Σ value ${row!.total}, expected ${events.length}`,
        violations.length === 0 ? '' : `affinity reconcile: ${violations.length} violations, e.g. ${JSON.stringify(violations[0])}`,
      ].filter(Boolean);
      const commits = Number(row!.commits);
      return {
        name,
        rate: applied / drain.seconds,
        unit: 'events/s',
        count: applied,
        seconds: drain.seconds,
        ...perJob(drain, events.length),
        ok: problems.length === 0,
        detail: `${commits} affinity transactions, ${(applied / Math.max(1, commits)).toFixed(0)} events each`,
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

/** Both variants, one measurement each: events applied per second of drain. */
export async function benchAffinity(ctx: WorkloadContext): Promise<Measurement[]> {
  return [await one(ctx, 'uniform'), await one(ctx, 'hot')];
}
