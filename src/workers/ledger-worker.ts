import { Worker, type Job } from 'bullmq';
import type { RedisClient as Redis } from '../redis.ts';
import type { ConfigCache } from '../config/store.ts';
import type { Sql } from '../db/client.ts';
import { PermanentJobError } from '../errors.ts';
import { ChargeNotApplied, type ApplyResult, type CommandOutcome, type LedgerCommand } from '../ledger/commands.ts';
import { recordDeadLetters } from '../ledger/sql/dead-letters.ts';
import { runLedgerTransaction } from '../ledger/transaction.ts';
import { carryTrace, tracedRun } from '../telemetry/transaction-span.ts';
import type { Logger } from '../log.ts';
import { QUEUE } from '../queues/common.ts';
import { isBatchJob } from '../queues/batch.ts';
import { Batcher } from './batcher.ts';
import { runBatchJob, type BatchJobDeps } from './batch-job.ts';
import { deadLetterAlone, refusedJobLetter } from './dead-letters.ts';
import { settle } from './job-outcome.ts';
import { closeWithGrace } from './graceful-close.ts';
import { ledgerCommandOf, toLedgerCommand } from './ledger-commands.ts';
import { WORKER_DEFAULTS, lockOptions, type BatchedWorkerDeps } from './worker-deps.ts';

export interface LedgerWorkerDeps extends BatchedWorkerDeps {
  /** How long a refund waits for its charge to be applied (TALLY_REFUND_WAIT_SECONDS), in ms. */
  refundWaitMs?: number;
}

export interface LedgerWorkers {
  workers: Worker[];
  batcher: Batcher<LedgerCommand, CommandOutcome>;
  close(): Promise<void>;
}


/**
 * Workers for `charges` and `grants`. Both feed one in-process batcher, so grants and charges of the same
 * account commit in one transaction, in arrival order, and every commit carries up to `batchMax` events.
 */
export function startLedgerWorkers(deps: LedgerWorkerDeps): LedgerWorkers {
  const batcher = new Batcher<LedgerCommand, CommandOutcome>(tracedRun('tally.ledger.transaction', deps.sql, (sql, cmds, turn) => runLedgerTransaction(sql, deps.configs, cmds, turn)), {
    maxBatch: deps.batchMax,
    parallel: deps.batchParallel,
    log: deps.log,
    // Every command but a refund names its user: runs in parallel then lock disjoint accounts.
    keys: (cmd) => ('userId' in cmd ? [cmd.userId] : null),
    failAlone: deadLetterAlone(deps.sql),
  });

  const debug = deps.log.isLevelEnabled('debug');
  const batchDeps = (queue: string): BatchJobDeps<LedgerCommand> => ({
    queue,
    sql: deps.sql,
    log: deps.log,
    toCommand: (data, carriedBy) => carryTrace(ledgerCommandOf(queue, data, carriedBy, deps.refundWaitMs)),
    submit: (cmd) => batcher.submit(cmd),
  });
  const forBatches: Record<string, BatchJobDeps<LedgerCommand>> = { [QUEUE.charges]: batchDeps(QUEUE.charges), [QUEUE.grants]: batchDeps(QUEUE.grants) };
  /** One job, one event: validated, group-committed, its outcome mapped (settle) — no closure made per job. */
  const applyJob = (queue: string) => async (job: Job): Promise<ApplyResult> => {
    let cmd: LedgerCommand;
    try {
      cmd = toLedgerCommand(queue, job, deps.refundWaitMs);
    } catch (err) {
      if (err instanceof PermanentJobError) {
        await recordDeadLetters(deps.sql, [refusedJobLetter(queue, job, err)]);
        jobLog(deps.log, queue, job).warn({ reason: err.message }, 'job refused');
      }
      throw err;
    }
    const outcome = await batcher.submit(carryTrace(cmd));
    if (!outcome.ok) {
      // A refund waiting for its charge is retried, not refused (settle moves it back to the delayed set).
      if (outcome.error instanceof ChargeNotApplied) jobLog(deps.log, queue, job).debug({ reason: outcome.error.message }, 'job waits');
      else jobLog(deps.log, queue, job).warn({ reason: outcome.error.message }, 'job refused');
      throw outcome.error;
    }
    if (debug) jobLog(deps.log, queue, job).debug({ outcome: outcome.result.outcome }, 'job applied');
    return outcome.result;
  };
  const processor = (queue: string) => {
    const one = applyJob(queue);
    const batch = (job: Job) => runBatchJob(job, forBatches[queue]!);
    return (job: Job, token?: string): Promise<ApplyResult> => settle(job, token, isBatchJob(job.data) ? batch : one);
  };

  const workers = [QUEUE.charges, QUEUE.grants].map(
    (queue) =>
      new Worker(queue, processor(queue), {
        connection: deps.redis,
        prefix: deps.prefix,
        concurrency: deps.concurrency,
        ...WORKER_DEFAULTS,
        ...lockOptions(deps.lockDuration),
      }),
  );
  for (const w of workers) w.on('error', (err) => deps.log.error({ err, queue: w.name }, 'worker error'));

  return {
    workers,
    batcher,
    close: () => closeWithGrace(workers, batcher, deps.shutdownGraceMs),
  };
}

/** One child logger for a job, made only when the job has something to say (hot path: thousands per second). */
function jobLog(log: Logger, queue: string, job: Job): Logger {
  return log.child({ queue, job_id: job.id, event_id: eventIdOf(job.data), attempt: job.attemptsMade + 1 });
}

function eventIdOf(data: unknown): string | null {
  const id = (data as { event_id?: unknown } | null)?.event_id;
  return typeof id === 'string' ? id.slice(0, 128) : null;
}
