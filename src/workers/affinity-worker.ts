import { Worker, type Job } from 'bullmq';
import type { RedisClient as Redis } from '../redis.ts';
import type { AffinityCommand } from '../affinity/commands.ts';
import { affinityCommandOf, toAffinityCommand } from '../affinity/to-command.ts';
import { isBatchJob } from '../queues/batch.ts';
import { runAffinityTransaction } from '../affinity/transaction.ts';
import { carryTrace, tracedRun } from '../telemetry/transaction-span.ts';
import type { ConfigCache } from '../config/store.ts';
import type { Sql } from '../db/client.ts';
import { PermanentJobError } from '../errors.ts';
import type { ApplyResult, CommandOutcome } from '../ledger/commands.ts';
import { recordDeadLetters } from '../ledger/sql/dead-letters.ts';
import type { Logger } from '../log.ts';
import { QUEUE } from '../queues/common.ts';
import { Batcher } from './batcher.ts';
import { runBatchJob, type BatchJobDeps } from './batch-job.ts';
import { deadLetterAlone, refusedJobLetter } from './dead-letters.ts';
import { closeWithGrace } from './graceful-close.ts';
import { settle } from './job-outcome.ts';
import { WORKER_DEFAULTS, lockOptions, type BatchedWorkerDeps } from './worker-deps.ts';
import { workerCreated } from './worker-registry.ts';

export type AffinityWorkerDeps = BatchedWorkerDeps;

export interface AffinityWorker {
  worker: Worker;
  batcher: Batcher<AffinityCommand, CommandOutcome>;
  close(): Promise<void>;
}

/**
 * The `affinity-events` worker. Jobs are validated one by one, then group-committed: every event that
 * arrives while a transaction runs goes into the next one, so a hot device costs one lock per batch.
 */
export function startAffinityWorker(deps: AffinityWorkerDeps): AffinityWorker {
  const queue = QUEUE.affinityEvents;
  const batcher = new Batcher<AffinityCommand, CommandOutcome>(tracedRun('tally.affinity.transaction', deps.sql, (sql, cmds, turn) => runAffinityTransaction(sql, deps.configs, cmds, turn)), {
    maxBatch: deps.batchMax,
    parallel: deps.batchParallel,
    log: deps.log,
    // A user's devices and the accounts their level rewards go to: runs in parallel then lock disjoint rows.
    keys: (cmd) => [cmd.userId],
    failAlone: deadLetterAlone(deps.sql),
  });
  const debug = deps.log.isLevelEnabled('debug');
  const forBatches: BatchJobDeps<AffinityCommand> = {
    queue,
    sql: deps.sql,
    log: deps.log,
    toCommand: (data, carriedBy) => carryTrace(affinityCommandOf(data, carriedBy)),
    submit: (cmd) => batcher.submit(cmd),
  };

  /** One job, one event: validated, group-committed, its outcome mapped (settle) — no closure made per job. */
  const applyJob = async (job: Job): Promise<ApplyResult> => {
    let cmd: AffinityCommand;
    try {
      cmd = toAffinityCommand(job);
    } catch (err) {
      if (err instanceof PermanentJobError) {
        await recordDeadLetters(deps.sql, [refusedJobLetter(queue, job, err)]);
        jobLog(deps.log, job).warn({ reason: err.message }, 'job refused');
      }
      throw err;
    }
    const outcome = await batcher.submit(carryTrace(cmd));
    if (!outcome.ok) {
      jobLog(deps.log, job).warn({ reason: outcome.error.message }, 'job refused');
      throw outcome.error;
    }
    if (debug) jobLog(deps.log, job).debug({ outcome: outcome.result.outcome }, 'job applied');
    return outcome.result;
  };
  const applyBatch = (job: Job) => runBatchJob(job, forBatches);
  const processor = (job: Job, token?: string): Promise<ApplyResult> => settle(job, token, isBatchJob(job.data) ? applyBatch : applyJob);

  const worker = new Worker(queue, processor, { connection: deps.redis, prefix: deps.prefix, concurrency: deps.concurrency, ...WORKER_DEFAULTS,
    ...lockOptions(deps.lockDuration) });
  worker.on('error', (err) => deps.log.error({ err, queue }, 'worker error'));
  workerCreated(worker); // job metrics attach here
  return {
    worker,
    batcher,
    close: () => closeWithGrace([worker], batcher, deps.shutdownGraceMs),
  };
}

/** One child logger for a job, made only when the job has something to say (hot path: thousands per second). */
function jobLog(log: Logger, job: Job): Logger {
  return log.child({ queue: QUEUE.affinityEvents, job_id: job.id, event_id: eventIdOf(job.data), attempt: job.attemptsMade + 1 });
}

function eventIdOf(data: unknown): string | null {
  const id = (data as { event_id?: unknown } | null)?.event_id;
  return typeof id === 'string' ? id.slice(0, 128) : null;
}
