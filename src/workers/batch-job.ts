import type { Job } from 'bullmq';
import type { Sql } from '../db/client.ts';
import { PermanentJobError, invalidPayload, printable } from '../errors.ts';
import { ChargeNotApplied, type CommandKey, type CommandOutcome } from '../ledger/commands.ts';
import { recordDeadLetters, type DeadLetter } from '../ledger/sql/dead-letters.ts';
import type { Logger } from '../log.ts';
import { batchEnvelopeProblem, memberJobId, type BatchJobData, type BatchJobResult, type BatchMemberResult } from '../queues/batch.ts';
import { storablePayload } from '../queues/free-form.ts';
import { refusedJobLetter } from './dead-letters.ts';
import type { CarriedBy } from './ledger-commands.ts';

export interface BatchJobDeps<C extends CommandKey> {
  queue: string;
  sql: Sql;
  log: Logger;
  /** Validates one member into a command; bad input throws PermanentJobError (the member fails alone). */
  toCommand(data: unknown, carriedBy: CarriedBy): C;
  /** Hands a command to the queue's group-commit batcher. */
  submit(cmd: C): Promise<CommandOutcome>;
}

/**
 * What a batch job keeps in its progress between attempts: each member's answer once decided (null: not yet), so a
 * retry — a refund still waiting for its charge, a transient fault, a shutdown — runs only the undecided members and
 * still reports the decided ones' own results (not `noop_duplicate`), and a refused member is not dead-lettered twice.
 * `waiting_since` is the refund wait's start (job-outcome.ts), kept alongside.
 */
interface BatchProgress {
  waiting_since?: number;
  batch_results?: (BatchMemberResult | null)[];
}

/**
 * Runs a batch job (CONTRACT v2 §3): every member exactly as if it were its own job — validated alone, applied
 * exactly once by its own event_id through the same batcher as single-event jobs (so 1,000 members are a few group
 * commits), in the order listed (the batcher keeps each user's arrival order), a bad one failing alone and
 * dead-lettered under `<job id>#<index>`.
 *
 * A malformed envelope fails the whole job at once (invalid_payload, dead-lettered under the job id). When some
 * members cannot be decided in this attempt (a refund whose charge is not applied yet; a fault), the decided ones are
 * remembered in the job's progress and the error is thrown for `settle` to map (wait, retry, or fail): the next
 * attempt runs only the rest. Whatever happens, no member is applied twice — processed_events is the record.
 */
export async function runBatchJob<C extends CommandKey>(job: Job, deps: BatchJobDeps<C>): Promise<BatchJobResult> {
  const jobId = job.id ?? '';
  const problem = batchEnvelopeProblem(deps.queue, job.data);
  if (problem) {
    const err = invalidPayload(problem);
    await recordDeadLetters(deps.sql, [refusedJobLetter(deps.queue, job, err)]);
    deps.log.warn({ queue: deps.queue, job_id: jobId, reason: err.message }, 'batch job refused');
    throw err;
  }
  const events = (job.data as BatchJobData).events;
  const progress = progressOf(job);
  const results = remembered(progress, events.length);

  // Everything from here to the last submit is synchronous: this job's members enter the batcher in the order listed
  // and before any job the worker takes after it, so each user's order holds within and across jobs.
  const letters: DeadLetter[] = [];
  const submitted: { index: number; outcome: Promise<CommandOutcome> }[] = [];
  for (let i = 0; i < events.length; i++) {
    if (results[i] !== null) continue;
    let cmd: C;
    try {
      cmd = deps.toCommand(events[i], { id: memberJobId(jobId, i), timestamp: job.timestamp, progress: job.progress });
    } catch (err) {
      if (!(err instanceof PermanentJobError)) throw err;
      results[i] = failed(err);
      letters.push(memberLetter(deps.queue, jobId, i, events[i], err));
      continue;
    }
    submitted.push({ index: i, outcome: deps.submit(cmd) });
  }

  const [settled] = await Promise.all([
    Promise.allSettled(submitted.map((s) => s.outcome)),
    letters.length > 0 ? recordDeadLetters(deps.sql, letters) : undefined,
  ]);

  let waiting: ChargeNotApplied | undefined;
  let fault: unknown;
  settled.forEach((s, k) => {
    const i = submitted[k]!.index;
    if (s.status === 'rejected') fault ??= s.reason;
    else if (s.value.ok) results[i] = s.value.result;
    else if (s.value.error instanceof ChargeNotApplied) waiting ??= s.value.error;
    else results[i] = failed(s.value.error);
  });

  if (waiting || fault !== undefined) {
    // Some members wait or hit a fault: remember what is decided (and when waiting began), then let settle() put the
    // job back (or fail it, for a bug). Should this write fail, the next attempt still applies nothing twice: its
    // decided members answer noop_duplicate with their original results.
    const next: BatchProgress = { ...progress, batch_results: results };
    if (waiting && typeof next.waiting_since !== 'number') next.waiting_since = Date.now();
    await job.updateProgress(next as object);
    throw fault ?? waiting;
  }

  const refused = results.filter((r) => r !== null && 'failed' in r).length;
  if (refused > 0 || letters.length > 0) {
    deps.log.warn({ queue: deps.queue, job_id: jobId, attempt: job.attemptsMade + 1, events: events.length, failed: refused }, 'batch job applied; some events failed alone');
  }
  return { outcome: 'batch', results: results as BatchMemberResult[] };
}

function progressOf(job: Job): BatchProgress {
  const p = job.progress;
  return typeof p === 'object' && p !== null && !Array.isArray(p) ? (p as BatchProgress) : {};
}

/** The answers remembered from an earlier attempt, or none decided (an unrecognisable progress is ignored). */
function remembered(progress: BatchProgress, n: number): (BatchMemberResult | null)[] {
  const r = progress.batch_results;
  return Array.isArray(r) && r.length === n ? r.map((x) => (x && typeof x === 'object' ? x : null)) : new Array<null>(n).fill(null);
}

function failed(err: PermanentJobError): BatchMemberResult {
  return { failed: err.code, reason: err.message };
}

/** The dead letter of a member refused before it reached the batcher (made storable, as for a single job). */
function memberLetter(queue: string, jobId: string, index: number, data: unknown, err: PermanentJobError): DeadLetter {
  const eventId = (data as { event_id?: unknown } | null)?.event_id;
  return {
    queue,
    job_id: printable(memberJobId(jobId, index), 200),
    event_id: typeof eventId === 'string' ? printable(eventId, 200) : null,
    reason_code: err.code,
    reason: err.message,
    payload: storablePayload(data),
  };
}
