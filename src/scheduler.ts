import { Queue, Worker } from 'bullmq';
import type { AppContext } from './context.ts';
import { QUEUE } from './queues/common.ts';
import { MAINTENANCE_TASKS } from './maintenance/tasks.ts';
import { recordReconcile } from './ops/job-stats.ts';
import { WORKER_DEFAULTS } from './workers/worker-deps.ts';

/** Maintenance schedules. BullMQ job schedulers are keyed by id in Redis, so however many processes upsert
 * them, each fires once per interval, and the job runs on exactly one worker. */
export const SCHEDULES: { id: string; task: string; every?: number; pattern?: string }[] = [
  { id: 'expire', task: 'expire', every: 5 * 60_000 },
  { id: 'reconcile', task: 'reconcile', every: 60 * 60_000 },
];

export function addSchedule(s: { id: string; task: string; every?: number; pattern?: string }): void {
  SCHEDULES.push(s);
}

/**
 * Puts the maintenance schedules in place, and again every TALLY_SCHEDULE_CHECK_MS: upserting a job scheduler is
 * idempotent (same id, same interval: nothing changes), and a Redis that lost its data (no AOF, a failover to an
 * empty replica) gets its schedules back within that interval instead of at the next deploy.
 */
export async function startScheduler(ctx: AppContext): Promise<{ close(): Promise<void> }> {
  const queue = new Queue(QUEUE.maintenance, { connection: ctx.redis, prefix: ctx.env.TALLY_PREFIX });
  const ensure = async () => {
    for (const s of SCHEDULES) {
      await queue.upsertJobScheduler(
        s.id,
        s.every !== undefined ? { every: s.every } : { pattern: s.pattern!, tz: 'UTC' },
        { name: s.task, opts: { removeOnComplete: { count: 200 }, removeOnFail: { count: 500 } } },
      );
    }
  };
  await ensure();
  ctx.log.info({ schedules: SCHEDULES.map((s) => s.id) }, 'maintenance schedules in place');
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= ensure()
      .catch((err: unknown) => ctx.log.warn({ err }, 'could not re-assert the maintenance schedules; trying again later'))
      .finally(() => (running = undefined));
  }, ctx.env.TALLY_SCHEDULE_CHECK_MS);
  timer.unref();
  return {
    close: async () => {
      clearInterval(timer);
      await running;
      await queue.close();
    },
  };
}

/** Runs maintenance jobs (scheduled or enqueued by hand) by their name. */
export function startMaintenanceWorker(ctx: AppContext): Worker {
  const worker = new Worker(
    QUEUE.maintenance,
    async (job) => {
      const run = MAINTENANCE_TASKS.get(job.name);
      if (!run) throw new Error(`unknown maintenance task ${job.name}`);
      const summary = await run({ sql: ctx.sql, configs: ctx.configs, env: ctx.env });
      if (job.name === 'reconcile') await recordReconcile(ctx.redis, ctx.env.TALLY_PREFIX, summary);
      ctx.log.info({ queue: QUEUE.maintenance, job_id: job.id, task: job.name, summary }, 'maintenance done');
      return summary;
    },
    { connection: ctx.redis, prefix: ctx.env.TALLY_PREFIX, concurrency: 1, ...WORKER_DEFAULTS, lockDuration: 120_000 },
  );
  worker.on('error', (err) => ctx.log.error({ err }, 'maintenance worker error'));
  return worker;
}
