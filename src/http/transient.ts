import { setTimeout as sleep } from 'node:timers/promises';
import { isTransient } from '../errors.ts';

/**
 * Runs a database transaction a request makes, again after a passing fault (a lock another transaction holds
 * NOWAIT, a deadlock, a serialization failure, a dropped connection) — as the workers do for jobs — a few times with
 * a short jittered backoff, so a request racing the workers on a new account gets its answer instead of a 500.
 */
export async function retryTransient<T>(work: () => Promise<T>, attempts = 6): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (!isTransient(err) || attempt >= attempts) throw err;
      await sleep(10 * 2 ** attempt * (0.5 + Math.random()));
    }
  }
}
