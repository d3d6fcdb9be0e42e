import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PermanentJobError, UNIQUE_VIOLATION_RETRIES } from '../src/errors.ts';
import { createLogger } from '../src/log.ts';
import { Batcher } from '../src/workers/batcher.ts';

const log = createLogger('silent');

/** A PostgreSQL error as postgres.js raises it. */
const pgError = (code: string, message: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(message), { code, ...extra });

/**
 * A run function standing in for a ledger transaction: it fails as a whole when any poison item is in it (as
 * PostgreSQL aborts the whole transaction), else commits every item, recording what committed in which order.
 */
function ledgerLike(poison: (x: number) => Error | null) {
  const committed: number[] = [];
  const runs: number[][] = [];
  const run = async (xs: number[]) => {
    runs.push(xs);
    await new Promise((r) => setImmediate(r));
    for (const x of xs) {
      const err = poison(x);
      if (err) throw err;
    }
    committed.push(...xs);
    return xs.map((x) => x * 10);
  };
  return { run, committed, runs };
}

/** Submits `first` alone (it runs at once), then `rest` while it is in flight, so `rest` forms one batch. */
async function submitBatch(b: Batcher<number, number | string>, first: number, rest: number[]) {
  const head = b.submit(first);
  const tail = rest.map((x) => b.submit(x).then((v) => ({ ok: v }), (e: unknown) => ({ err: e })));
  return { head: await head, tail: await Promise.all(tail) };
}

describe('Batcher: an event the database cannot store fails alone', () => {
  it('a batch of 500 with one data error commits the other 499 in a few group commits, in order, and blames the one', async () => {
    const poison = 137;
    const { run, committed, runs } = ledgerLike((x) => (x === poison ? pgError('22003', 'value "1e+20" is out of range for type bigint') : null));
    const failed: { item: number; error: PermanentJobError }[] = [];
    const b = new Batcher<number, number | string>(run, {
      maxBatch: 500,
      parallel: 1,
      log,
      failAlone: async (item, error) => {
        failed.push({ item, error });
        return `dead-lettered ${item}`;
      },
    });
    const rest = Array.from({ length: 500 }, (_, i) => i + 1);
    const { tail } = await submitBatch(b, 0, rest);
    expect(tail.filter((t) => 'ok' in t && typeof t.ok === 'number')).toHaveLength(499);
    expect(tail[poison - 1]).toEqual({ ok: `dead-lettered ${poison}` });
    expect(failed).toHaveLength(1);
    expect(failed[0]!.error).toBeInstanceOf(PermanentJobError);
    expect(failed[0]!.error.code).toBe('invalid_payload');
    expect(failed[0]!.error.message).toMatch(/SQLSTATE 22003/);
    // Every good item committed, once, in arrival order; not one transaction per item.
    expect(committed).toEqual([0, ...rest.filter((x) => x !== poison)]);
    expect(runs.length - 1).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(500)) + 1);
  });

  it('without a failAlone hook the item to blame rejects with its PermanentJobError', async () => {
    const { run } = ledgerLike((x) => (x === 3 ? pgError('22P05', 'unsupported Unicode escape sequence') : null));
    const b = new Batcher<number, number | string>(run, { maxBatch: 10, parallel: 1, log });
    const { tail } = await submitBatch(b, 0, [1, 2, 3, 4]);
    expect(tail.map((t) => ('ok' in t ? t.ok : (t.err as Error).message))).toEqual([10, 20, expect.stringMatching(/^invalid_payload: .*22P05/), 40]);
  });

  it('a unique violation is retried a bounded number of times, then blamed on the event that keeps causing it', async () => {
    let transientOnce = true;
    const { run, committed, runs } = ledgerLike((x) => {
      if (x === 2 && transientOnce) {
        transientOnce = false; // a concurrent twin: gone on the next attempt
        return pgError('23505', 'duplicate key value violates unique constraint "processed_events_pkey"', { constraint_name: 'processed_events_pkey' });
      }
      return x === 5 ? pgError('23505', 'duplicate key value violates unique constraint "holds_pkey"', { constraint_name: 'holds_pkey' }) : null;
    });
    const b = new Batcher<number, number | string>(run, { maxBatch: 10, parallel: 1, log, retryBaseMs: 1, retryMaxMs: 2 });
    const { tail } = await submitBatch(b, 0, [1, 2, 3, 4, 5, 6]);
    expect(tail.slice(0, 4)).toEqual([{ ok: 10 }, { ok: 20 }, { ok: 30 }, { ok: 40 }]);
    const err = (tail[4] as { err: PermanentJobError }).err;
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err.message).toMatch(/^idempotency_conflict: unique constraint holds_pkey kept refusing this event after 5 attempts/);
    expect(tail[5]).toEqual({ ok: 60 });
    expect(committed).toEqual([0, 1, 2, 3, 4, 6]);
    // Bounded: the lone item 5 ran UNIQUE_VIOLATION_RETRIES times, not for ever.
    expect(runs.filter((r) => r.length === 1 && r[0] === 5)).toHaveLength(UNIQUE_VIOLATION_RETRIES);
  });

  it('an item failing alone with an error that is not its data (a bug) keeps that error', async () => {
    const { run } = ledgerLike((x) => (x === 2 ? new TypeError('boom') : null));
    const b = new Batcher<number, number | string>(run, { maxBatch: 10, parallel: 1, log, failAlone: async () => 'never' });
    const { tail } = await submitBatch(b, 0, [1, 2, 3]);
    expect(tail[0]).toEqual({ ok: 10 });
    expect((tail[1] as { err: Error }).err).toBeInstanceOf(TypeError);
    expect(tail[2]).toEqual({ ok: 30 });
  });

  it('property: whatever items are poison, every other item commits exactly once and in arrival order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 200 }), fc.uniqueArray(fc.integer({ min: 1, max: 200 }), { maxLength: 6 }), async (size, bad) => {
        const poison = new Set(bad.filter((x) => x <= size));
        const { run, committed, runs } = ledgerLike((x) => (poison.has(x) ? pgError('22021', 'invalid byte sequence for encoding "UTF8": 0x00') : null));
        const b = new Batcher<number, number | string>(run, { maxBatch: 1000, parallel: 1, log, failAlone: async (x) => `dl ${x}` });
        const rest = Array.from({ length: size }, (_, i) => i + 1);
        const { tail } = await submitBatch(b, 0, rest);
        expect(committed).toEqual([0, ...rest.filter((x) => !poison.has(x))]);
        tail.forEach((t, i) => expect(t).toEqual({ ok: poison.has(i + 1) ? `dl ${i + 1}` : (i + 1) * 10 }));
        // Each poison item costs about two runs per halving, never one run per item.
        expect(runs.length - 1).toBeLessThanOrEqual(1 + Math.max(1, poison.size) * 2 * Math.ceil(Math.log2(size + 1)));
      }),
      { numRuns: 60 },
    );
  });
});
