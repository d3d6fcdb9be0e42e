import { ShutdownError, isTransient } from '../errors.ts';
import type { Logger } from '../log.ts';

export interface BatcherOptions<I> {
  /** Most items one run gets. */
  maxBatch: number;
  /** Runs in flight at once; further items wait and go together into the next run. */
  parallel: number;
  log: Logger;
  /** Backoff for transient faults: first delay and cap, in ms. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /**
   * What an item will lock (e.g. its user), or null if that is not known before its run. While runs are in
   * flight, a new run leaves out items sharing a key with them — they would only wait for those runs' row
   * locks — and every later item with a key of one left out, so each key keeps its arrival order. If that
   * leaves nothing (one hot key), the run starts anyway: its first round trips overlap the run it waits for.
   * An item without keys (it may touch anything: a refund of an earlier charge) is a barrier: it waits until
   * no run is in flight, every item after it waits for it, and no run starts beside it.
   */
  keys?: (item: I) => readonly string[] | null;
}

interface Waiter<I, O> {
  item: I;
  keys: readonly string[] | null;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

type State = 'open' | 'closing' | 'closed';

/**
 * Group commit. Callers `submit` one item each and await its own result; items that arrive while a run is
 * in flight are gathered and go together into the next run (natural batching: no timer, so an idle system
 * answers at once and a busy one amortises every commit over hundreds of items).
 *
 * Failures: a transient fault retries the whole run with capped exponential backoff, for as long as the
 * batcher is open. Any other failure of a run of several items re-runs each item alone, so one bad item
 * cannot sink its batch-mates; an item that fails alone gets its own error.
 */
export class Batcher<I, O> {
  private queue: Waiter<I, O>[] = [];
  private inFlight = 0;
  /** Keys of the items in flight, with how many items hold each. */
  private busy = new Map<string, number>();
  /** Items without keys in flight (see BatcherOptions.keys). */
  private barriers = 0;
  private state: State = 'open';
  private idle: (() => void)[] = [];
  /** Backoff sleeps in progress; close() cuts them short so a retry loop ends at once. */
  private sleepers = new Set<() => void>();

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly opts: BatcherOptions<I>,
  ) {}

  submit(item: I): Promise<O> {
    if (this.state !== 'open') return Promise.reject(new ShutdownError());
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, keys: this.opts.keys?.(item) ?? null, resolve, reject });
      this.pump();
    });
  }

  /** A run is waiting out a transient fault (e.g. the database is unreachable). */
  get retrying(): boolean {
    return this.sleepers.size > 0;
  }

  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  /** Stops taking items, lets in-flight runs finish, and rejects what never started with ShutdownError. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    for (const w of this.queue.splice(0)) w.reject(new ShutdownError());
    for (const wake of this.sleepers) wake();
    if (this.inFlight > 0) await new Promise<void>((r) => this.idle.push(r));
    this.state = 'closed';
  }

  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.opts.parallel) {
      const batch = this.take();
      if (batch.length === 0) return; // all of it waits for a run in flight; its end pumps again
      this.inFlight++;
      this.hold(batch, 1);
      void this.execute(batch).finally(() => {
        this.inFlight--;
        this.hold(batch, -1);
        if (this.inFlight === 0) for (const r of this.idle.splice(0)) r();
        this.pump();
      });
    }
  }

  /** The next run's items: the oldest ones, leaving out those that would wait on the runs in flight. */
  private take(): Waiter<I, O>[] {
    const max = this.opts.maxBatch;
    if (this.inFlight === 0) return this.queue.splice(0, max);
    if (this.barriers > 0) return [];
    const taken: Waiter<I, O>[] = [];
    const kept: Waiter<I, O>[] = [];
    const blocked = new Set<string>();
    let barrier = false;
    for (const w of this.queue) {
      if (barrier || taken.length >= max) kept.push(w);
      else if (w.keys === null) {
        kept.push(w);
        barrier = true;
      } else if (w.keys.some((k) => this.busy.has(k) || blocked.has(k))) {
        kept.push(w);
        for (const k of w.keys) blocked.add(k);
      } else taken.push(w);
    }
    if (taken.length === 0) {
      // One hot key: start anyway, with the oldest items up to the first barrier.
      const upTo = this.queue.findIndex((w) => w.keys === null);
      return this.queue.splice(0, upTo === -1 ? max : Math.min(max, upTo));
    }
    this.queue = kept;
    return taken;
  }

  private hold(batch: Waiter<I, O>[], by: 1 | -1): void {
    for (const w of batch) {
      if (w.keys === null) this.barriers += by;
      for (const k of w.keys ?? []) {
        const n = (this.busy.get(k) ?? 0) + by;
        if (n === 0) this.busy.delete(k);
        else this.busy.set(k, n);
      }
    }
  }

  private async execute(batch: Waiter<I, O>[]): Promise<void> {
    try {
      const results = await this.withRetry(() => this.run(batch.map((w) => w.item)));
      await resolveInSlices(batch, results);
    } catch (err) {
      if (batch.length === 1 || err instanceof ShutdownError) {
        for (const w of batch) w.reject(err);
        return;
      }
      this.opts.log.warn({ err, size: batch.length }, 'batch failed; applying its items one by one');
      for (const w of batch) {
        try {
          const [result] = await this.withRetry(() => this.run([w.item]));
          w.resolve(result!);
        } catch (single) {
          w.reject(single);
        }
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  private async withRetry<T>(fn: () => Promise<T>): Promise<T> {
    const base = this.opts.retryBaseMs ?? 50;
    const cap = this.opts.retryMaxMs ?? 5000;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!isTransient(err) || err instanceof ShutdownError) throw err;
        if (this.state !== 'open') throw new ShutdownError();
        const delay = Math.min(cap, base * 2 ** Math.min(attempt, 16)) * (0.5 + Math.random() / 2);
        if (attempt === 0 || attempt % 10 === 0) this.opts.log.warn({ err, attempt, delay_ms: Math.round(delay) }, 'transient fault; retrying');
        await this.sleep(delay);
        if (this.state !== 'open') throw new ShutdownError();
      }
    }
  }
}

/** Items handed back per turn of the event loop. */
const RESOLVE_SLICE = 32;

/**
 * Hands results back a slice per event-loop turn. Each resolved item sets off its job's completion (BullMQ
 * scripts, the next job's intake) as microtasks; resolving hundreds at once would run all of that before the
 * loop polls sockets again, stalling the other run's database round trips for tens of milliseconds.
 */
async function resolveInSlices<I, O>(batch: Waiter<I, O>[], results: O[]): Promise<void> {
  for (let i = 0; i < batch.length; i += RESOLVE_SLICE) {
    if (i > 0) await new Promise<void>((r) => setImmediate(r));
    for (let k = i; k < Math.min(i + RESOLVE_SLICE, batch.length); k++) batch[k]!.resolve(results[k]!);
  }
}
