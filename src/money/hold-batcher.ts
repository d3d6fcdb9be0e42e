import type { ConfigCache } from '../config/store.ts';
import type { Sql } from '../db/client.ts';
import { HttpError, PermanentJobError, blameOnEvent, RetriesExhaustedError, ShutdownError, UNIQUE_VIOLATION, errorCode, isTransient } from '../errors.ts';
import { retryTransient } from '../http/transient.ts';
import type { Logger } from '../log.ts';
import { Batcher } from '../workers/batcher.ts';
import { applyHoldBatch, type HoldOp, type HoldOutcome } from './hold-batch.ts';

/** A hold request's transaction is retried (src/http/transient.ts) within this long of the request's arrival: a lock
 * held for seconds is not waited out. The budget counts from when the (oldest) request arrived, so time spent queued
 * behind another run that was waiting out the same lock counts too. */
const RETRY_BUDGET_MS = 5_000;
const retryHoldTransient = <T>(work: () => Promise<T>, started = Date.now()) => retryTransient(work, { budgetMs: RETRY_BUDGET_MS, started });

export interface HoldBatcherOptions {
  /** TALLY_HOLD_BATCH_MAX: most requests one transaction applies; 1 = one transaction per request, no batcher. */
  maxBatch: number;
  /** TALLY_HOLD_BATCH_PARALLEL: transactions in flight at once. */
  parallel: number;
  log: Logger;
}

/**
 * The hold requests of one API process, group-committed: each request is submitted and awaits its own outcome;
 * requests that arrive while a run is in flight go together into the next run, one transaction for all of them
 * (src/workers/batcher.ts: natural batching — no timer, so an idle process answers at once). Order per account: a
 * run applies its requests in arrival order (src/money/hold-batch.ts), with the outcomes one transaction each would
 * give in that order; the batcher holds a request back while a run with its account is in flight (when that account
 * is the only one with work, the next run starts anyway and queues on the account's row lock). Every request takes
 * effect at one instant between its arrival and its answer, under its account's row lock: a request sent after
 * another's answer always sees its effect.
 *
 * Failure isolation: a request's own error (bad input, a conflict, an insufficient balance) is its outcome and
 * touches no other; a passing fault retries the whole run (retryHoldTransient) and, if it persists, is every
 * request's answer (503); anything else splits the run in halves until the request to blame fails alone.
 */
export class HoldBatcher {
  private readonly batcher: Batcher<HoldOp, HoldOutcome> | null;

  constructor(
    private readonly sql: Sql,
    private readonly configs: ConfigCache,
    opts: HoldBatcherOptions,
  ) {
    this.batcher =
      opts.maxBatch <= 1
        ? null
        : new Batcher((ops) => this.runGroup(ops), {
            maxBatch: opts.maxBatch,
            parallel: opts.parallel,
            log: opts.log,
            keys: (op) => (op.op === 'place' ? [`${op.req.user_id}\u0000${op.req.asset}`] : [`${op.userId}\u0000${op.asset}`]),
            failAlone: async (_op, error) => ({ kind: 'failed', error: httpErrorOf(error) }),
          });
  }

  /** The request's outcome; a fault that outlasted its retries is thrown (the server answers it 503). */
  async apply(op: HoldOp): Promise<HoldOutcome> {
    if (!this.batcher) return applyAlone(this.sql, this.configs, op);
    const outcome = await this.batcher.submit({ ...op, arrived: Date.now() });
    if (outcome.kind === 'failed' && isTransient(outcome.error)) throw outcome.error;
    return outcome;
  }

  /** Lets runs in flight finish; requests not started yet get ShutdownError (a 503). */
  close(): Promise<void> {
    return this.batcher?.close() ?? Promise.resolve();
  }

  private async runGroup(ops: HoldOp[]): Promise<HoldOutcome[]> {
    let attempts = 0;
    try {
      return await retryHoldTransient(
        () => {
          attempts++;
          return applyHoldBatch(this.sql, this.configs, ops);
        },
        Math.min(...ops.map((o) => o.arrived ?? Date.now())),
      );
    } catch (err) {
      if (!isTransient(err) || err instanceof ShutdownError) throw err;
      // A unique violation that persists belongs to one request (an event_id a twin keeps inserting): let the
      // batcher split the run until it fails alone (as idempotency_conflict), the others commit.
      if (errorCode(err) === UNIQUE_VIOLATION) throw new RetriesExhaustedError(err, attempts);
      // Any other fault is the database's, not a request's: every request of the run answers it.
      return ops.map(() => ({ kind: 'failed', error: err }));
    }
  }
}

/** One request, one transaction (TALLY_HOLD_BATCH_MAX=1, and placeHold/releaseHoldById). */
export async function applyAlone(sql: Sql, configs: ConfigCache, op: HoldOp): Promise<HoldOutcome> {
  let attempts = 0;
  try {
    const [outcome] = await retryHoldTransient(() => {
      attempts++;
      return applyHoldBatch(sql, configs, [op]);
    });
    return outcome!;
  } catch (err) {
    const blamed = errorCode(err) === UNIQUE_VIOLATION ? blameOnEvent(new RetriesExhaustedError(err, attempts)) : null;
    if (blamed) return { kind: 'failed', error: httpErrorOf(blamed) };
    throw err;
  }
}

/** A request that failed alone with an error of its own (see blameOnEvent): 409 for a conflict, else 422. */
function httpErrorOf(error: PermanentJobError): HttpError {
  return new HttpError(error.code === 'idempotency_conflict' ? 409 : 422, error.code, error.message);
}
