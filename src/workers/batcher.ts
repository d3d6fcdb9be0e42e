import {
  PermanentJobError,
  RetriesExhaustedError,
  ShutdownError,
  UNIQUE_VIOLATION,
  UNIQUE_VIOLATION_RETRIES,
  blameOnEvent,
  errorCode,
  isTransient,
} from '../errors.ts';
import type { Logger } from '../log.ts';

export interface BatcherOptions<I, O = unknown> {
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
  /**
   * The outcome for an item that failed alone with an error that belongs to it (a value the database cannot store,
   * a unique violation that persisted: see blameOnEvent), e.g. record a dead letter and return a failure. Without
   * it, that item's promise rejects with the PermanentJobError.
   */
  failAlone?: (item: I, error: PermanentJobError) => Promise<O>;
}

/**
 * What a run is told about the runs beside it. `beforeLocks()` resolves once every earlier run that may lock the
 * same rows has ended (committed or failed for good): a run started beside the runs holding its keys (one hot key,
 * see BatcherOptions.keys) awaits it before taking its locks, so its first round trips overlap theirs yet it never
 * takes a key's rows ahead of them — each key's events apply in arrival order (a batch job's per-user order). For
 * any other run it resolves at once.
 */
export interface RunTurn {
  beforeLocks(): Promise<void>;
}

const NO_WAIT: RunTurn = { beforeLocks: () => Promise.resolve() };

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
 * batcher is open (a unique violation only UNIQUE_VIOLATION_RETRIES times: one that persists belongs to an item).
 * Any other failure of a run of several items splits it in two and runs the halves one after the other, again
 * splitting a half that fails: the items to blame end up alone and fail with their own error (a data error then
 * becomes that item's PermanentJobError, see failAlone), while the rest commit in a few group commits — about
 * 2·log2(n) runs for one bad item among n, not n — and in their arrival order, so per-key order holds.
 */
export class Batcher<I, O> {
  private queue: Waiter<I, O>[] = [];
  private inFlight = 0;
  /** The runs in flight, each as the promise of its end. */
  private running = new Set<Promise<void>>();
  /** Set by take(): the run it returned shares keys with runs in flight (they must lock first). */
  private tookHot = false;
  /** Keys of the items in flight, with how many items hold each. */
  private busy = new Map<string, number>();
  /** Items without keys in flight (see BatcherOptions.keys). */
  private barriers = 0;
  private state: State = 'open';
  private idle: (() => void)[] = [];
  /** Backoff sleeps in progress; close() cuts them short so a retry loop ends at once. */
  private sleepers = new Set<() => void>();

  constructor(
    private readonly run: (items: I[], turn: RunTurn) => Promise<O[]>,
    private readonly opts: BatcherOptions<I, O>,
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
      this.tookHot = false;
      const batch = this.take();
      if (batch.length === 0) return; // all of it waits for a run in flight; its end pumps again
      const turn = this.tookHot ? afterAll([...this.running]) : NO_WAIT;
      this.inFlight++;
      this.hold(batch, 1);
      const done: Promise<void> = this.execute(batch, turn).finally(() => {
        this.inFlight--;
        this.running.delete(done);
        this.hold(batch, -1);
        if (this.inFlight === 0) for (const r of this.idle.splice(0)) r();
        this.pump();
      });
      this.running.add(done);
    }
  }

  /**
   * The next run's items: the oldest ones, leaving out those that would wait on the runs in flight. It looks at no
   * more than SCAN_RUNS runs' worth of waiting items: batch jobs can queue hundreds of thousands of events, and a
   * scan of all of them for every run made the batcher's own cost grow with its backlog.
   */
  private take(): Waiter<I, O>[] {
    const max = this.opts.maxBatch;
    if (this.inFlight === 0) return this.queue.splice(0, max);
    if (this.barriers > 0) return [];
    const taken: Waiter<I, O>[] = [];
    const kept: Waiter<I, O>[] = [];
    const blocked = new Set<string>();
    const limit = Math.min(this.queue.length, max * SCAN_RUNS);
    let i = 0;
    for (; i < limit && taken.length < max; i++) {
      const w = this.queue[i]!;
      if (w.keys === null) break; // a barrier: it and everything after it wait
      if (w.keys.some((k) => this.busy.has(k) || blocked.has(k))) {
        kept.push(w);
        for (const k of w.keys) blocked.add(k);
      } else taken.push(w);
    }
    if (taken.length === 0) {
      // One hot key: start anyway, with the oldest items up to the first barrier (it locks after the runs in flight).
      this.tookHot = true;
      const end = Math.min(max, this.queue.length);
      let upTo = 0;
      while (upTo < end && this.queue[upTo]!.keys !== null) upTo++;
      return this.queue.splice(0, upTo);
    }
    this.queue = i === this.queue.length ? kept : kept.concat(this.queue.slice(i));
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

  private async execute(batch: Waiter<I, O>[], turn: RunTurn): Promise<void> {
    let results: O[];
    try {
      results = await this.withRetry(() => this.run(batch.map((w) => w.item), turn));
    } catch (err) {
      if (err instanceof ShutdownError) {
        for (const w of batch) w.reject(err);
      } else if (batch.length === 1) {
        await this.failAlone(batch[0]!, err);
      } else {
        // Halves one after the other, in arrival order: an item never commits ahead of an earlier one of its key.
        this.opts.log.warn({ err, size: batch.length }, 'batch failed; splitting it to find the events to blame');
        const half = Math.ceil(batch.length / 2);
        await this.execute(batch.slice(0, half), turn);
        await this.execute(batch.slice(half), turn);
      }
      return;
    }
    await resolveInSlices(batch, results);
  }

  private async failAlone(w: Waiter<I, O>, err: unknown): Promise<void> {
    const blamed = blameOnEvent(err);
    if (!blamed || !this.opts.failAlone) return w.reject(blamed ?? err);
    try {
      w.resolve(await this.opts.failAlone(w.item, blamed));
    } catch (hookErr) {
      w.reject(hookErr);
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
    let uniqueViolations = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!isTransient(err) || err instanceof ShutdownError) throw err;
        // A concurrent twin of an event commits first and the retry sees it; a violation that persists is the run's own.
        if (errorCode(err) === UNIQUE_VIOLATION && ++uniqueViolations >= UNIQUE_VIOLATION_RETRIES) {
          throw new RetriesExhaustedError(err, uniqueViolations);
        }
        if (this.state !== 'open') throw new ShutdownError();
        const delay = Math.min(cap, base * 2 ** Math.min(attempt, 16)) * (0.5 + Math.random() / 2);
        if (attempt === 0 || attempt % 10 === 0) this.opts.log.warn({ err, attempt, delay_ms: Math.round(delay) }, 'transient fault; retrying');
        await this.sleep(delay);
        if (this.state !== 'open') throw new ShutdownError();
      }
    }
  }
}

function afterAll(runs: Promise<void>[]): RunTurn {
  const ended = Promise.allSettled(runs).then(() => undefined);
  return { beforeLocks: () => ended };
}

/** How many runs' worth of waiting items take() looks through for ones no run in flight holds. */
const SCAN_RUNS = 4;

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
