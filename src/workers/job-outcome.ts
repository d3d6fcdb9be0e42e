import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { PermanentJobError, isTransient } from '../errors.ts';
import { ChargeNotApplied } from '../ledger/commands.ts';

const TRANSIENT_DELAY_MS = 1000;

/** Adds `waiting_since` to the job's progress, keeping what else it holds (a batch job's decided results). */
async function rememberWaitStart(job: Job): Promise<void> {
  const p = job.progress as { waiting_since?: unknown } | number | undefined;
  if (typeof p === 'object' && p !== null && typeof p.waiting_since === 'number') return;
  await job.updateProgress({ ...(typeof p === 'object' && p !== null ? p : {}), waiting_since: Date.now() });
}

/**
 * The one place that maps an error to BullMQ behaviour:
 * - PermanentJobError (bad input, conflict): fail now, no retries, kept in the failed set with its reason;
 * - a transient fault, a shutdown, or a refund whose charge is not applied yet (it waits, up to its deadline):
 *   back to the delayed set without consuming an attempt;
 * - anything else (a bug): an ordinary failure, retried per the job's own attempts and backoff.
 * `work` takes the job, so a worker passes one function made at start, not a closure made per job (hot path).
 */
export async function settle<T>(job: Job, token: string | undefined, work: (job: Job) => Promise<T>): Promise<T> {
  try {
    return await work(job);
  } catch (err) {
    if (err instanceof PermanentJobError) throw new UnrecoverableError(err.message);
    if ((isTransient(err) || err instanceof ChargeNotApplied) && token) {
      // The first time a refund waits, remember when: its deadline counts from then (waitingSince).
      if (err instanceof ChargeNotApplied) await rememberWaitStart(job);
      await job.moveToDelayed(Date.now() + TRANSIENT_DELAY_MS, token);
      throw new DelayedError();
    }
    throw err;
  }
}
