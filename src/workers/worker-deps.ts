import type { RedisClient as Redis } from '../redis.ts';
import type { ConfigCache } from '../config/store.ts';
import type { AppContext } from '../context.ts';
import type { Sql } from '../db/client.ts';
import type { Logger } from '../log.ts';
import { bullmqTelemetry } from '../telemetry/bullmq.ts';

/** What a group-committing queue worker (ledger, affinity) needs; built from the context in one place. */
export interface BatchedWorkerDeps {
  sql: Sql;
  redis: Redis;
  prefix: string;
  configs: ConfigCache;
  log: Logger;
  concurrency: number;
  batchMax: number;
  batchParallel: number;
  /** Job lock duration (ms); stalled jobs of a dead worker are reclaimed after it. */
  lockDuration?: number;
  /** Grace period for in-flight jobs on close (ms). */
  shutdownGraceMs?: number;
}

export function batchedWorkerDeps(ctx: AppContext): BatchedWorkerDeps {
  return {
    sql: ctx.sql,
    redis: ctx.redis,
    prefix: ctx.env.TALLY_PREFIX,
    configs: ctx.configs,
    log: ctx.log.child({ role: 'worker' }),
    concurrency: ctx.env.TALLY_WORKER_CONCURRENCY,
    batchMax: ctx.env.TALLY_BATCH_MAX,
    batchParallel: ctx.env.TALLY_BATCH_PARALLEL,
    lockDuration: ctx.env.TALLY_LOCK_DURATION_MS,
  };
}

/** Worker options shared by every tally queue. */
export const WORKER_DEFAULTS = {
  // A crash leaves jobs active; the stall check hands them to a live worker, and the durable dedupe makes
  // the re-run a no-op. Allow many stalls: losing a job to repeated deploys would be worse.
  maxStalledCount: 20,
  removeOnComplete: { age: 24 * 3600, count: 20_000 },
  removeOnFail: { age: 30 * 24 * 3600 },
  get telemetry() { return bullmqTelemetry(); }, // OpenTelemetry (src/telemetry): undefined, so free, unless tracing is on
} as const;

/** BullMQ lock options for a configured lock duration (the stall check runs as often as a lock lasts). */
export function lockOptions(lockDuration: number | undefined): { lockDuration?: number; stalledInterval?: number } {
  return lockDuration ? { lockDuration, stalledInterval: lockDuration } : {};
}
