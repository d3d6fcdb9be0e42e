import { setTimeout as sleep } from 'node:timers/promises';
import { isTransient, ShutdownError } from '../errors.ts';

/**
 * Runs a database transaction a request makes, again after a passing fault (a lock another transaction holds
 * NOWAIT, a lock_timeout, a deadlock, a serialization failure, a dropped connection) — as the workers do for jobs —
 * a few times with a short jittered backoff, so a request racing the workers on a new account gets its answer instead
 * of a 500. `budgetMs` bounds it in time too, counted from `started` (when the request arrived): an HTTP client waits
 * for the answer, and a row an operator keeps locked for a minute is better answered with the fault (503) after a
 * few seconds than waited out. A shutdown is not retried. What still fails is thrown.
 */
export async function retryTransient<T>(work: () => Promise<T>, o: { attempts?: number; budgetMs?: number; started?: number } = {}): Promise<T> {
  const { attempts = 6, budgetMs = Infinity, started = Date.now() } = o;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (!isTransient(err) || err instanceof ShutdownError || attempt >= attempts || Date.now() - started >= budgetMs) throw err;
      await sleep(10 * 2 ** attempt * (0.5 + Math.random()));
    }
  }
}
