import { describe, expect, it } from 'vitest';
import { ShutdownError } from '../src/errors.ts';
import { createLogger } from '../src/log.ts';
import { Batcher } from '../src/workers/batcher.ts';

const log = createLogger('silent');
const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('Batcher (group commit)', () => {
  it('gathers items that arrive while a run is in flight into the next run', async () => {
    const sizes: number[] = [];
    const b = new Batcher<number, number>(async (xs) => {
      sizes.push(xs.length);
      await tick(20);
      return xs.map((x) => x * 2);
    }, { maxBatch: 100, parallel: 1, log });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => b.submit(i)));
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
    expect(sizes[0]).toBe(1); // an idle batcher answers at once
    expect(sizes.slice(1).reduce((a, c) => a + c, 0)).toBe(49);
    expect(sizes.length).toBeLessThanOrEqual(3);
  });

  it('retries a transient fault without failing the items', async () => {
    let calls = 0;
    const b = new Batcher<number, number>(async (xs) => {
      if (++calls < 3) throw Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
      return xs;
    }, { maxBatch: 10, parallel: 1, log, retryBaseMs: 1, retryMaxMs: 2 });
    expect(await b.submit(7)).toBe(7);
    expect(calls).toBe(3);
  });

  it('re-runs a failed batch item by item, so one bad item cannot sink its batch-mates', async () => {
    const b = new Batcher<number, number>(async (xs) => {
      await tick(2);
      if (xs.includes(13)) throw new Error('boom');
      return xs;
    }, { maxBatch: 10, parallel: 1, log });
    const first = b.submit(1); // runs alone; the rest gather behind it
    const rest = [12, 13, 14].map((x) => b.submit(x).then((v) => ({ ok: v }), (e: Error) => ({ err: e.message })));
    expect(await first).toBe(1);
    expect(await Promise.all(rest)).toEqual([{ ok: 12 }, { err: 'boom' }, { ok: 14 }]);
  });

  it('close() rejects what never started and ends a retry loop at once with ShutdownError', async () => {
    const b = new Batcher<number, number>(async () => {
      throw Object.assign(new Error('down'), { code: 'ECONNREFUSED' });
    }, { maxBatch: 10, parallel: 1, log, retryBaseMs: 60_000, retryMaxMs: 60_000 });
    const stuck = b.submit(1).catch((e) => e);
    const waiting = b.submit(2).catch((e) => e);
    await tick(20);
    const t0 = Date.now();
    await b.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await stuck).toBeInstanceOf(ShutdownError);
    expect(await waiting).toBeInstanceOf(ShutdownError);
    await expect(b.submit(3)).rejects.toBeInstanceOf(ShutdownError);
  });

  it('while a run is in flight, leaves out items whose keys it holds, keeping each key in arrival order', async () => {
    const runs: string[][] = [];
    const release: (() => void)[] = [];
    const b = new Batcher<string, string>(async (xs) => {
      runs.push(xs);
      await new Promise<void>((r) => release.push(r));
      return xs;
    }, { maxBatch: 100, parallel: 2, log, keys: (x) => (x.startsWith('*') ? null : [x.split(':')[0]!]) });
    const all = [b.submit('a:1'), b.submit('b:1')]; // run 1 holds key a, run 2 key b
    all.push(...['b:2', 'a:2', 'c:1', '*:1', 'c:2', 'd:1'].map((x) => b.submit(x))); // wait: both runs are in flight
    await tick();
    expect(runs).toEqual([['a:1'], ['b:1']]);
    release.shift()!(); // run 1 ends; run 2 still holds b
    await tick();
    // b:2 waits for b; the keyless *:1 (it may touch anything) waits for every run, and all after it wait for it.
    expect(runs[2]).toEqual(['a:2', 'c:1']);
    release.shift()!(); // run 2 ends; run 3 is in flight: the barrier still waits, and so do the b-items behind nothing
    await tick();
    expect(runs[3]).toEqual(['b:2']);
    release.splice(0).forEach((r) => r()); // runs 3 and 4 end: nothing in flight, the rest goes in order
    await tick();
    expect(runs[4]).toEqual(['*:1', 'c:2', 'd:1']);
    release.splice(0).forEach((r) => r());
    expect(await Promise.all(all)).toEqual(['a:1', 'b:1', 'b:2', 'a:2', 'c:1', '*:1', 'c:2', 'd:1']);
  });

  it('starts a run anyway when every waiting item shares a key with the runs in flight (one hot key)', async () => {
    const runs: string[][] = [];
    const release: (() => void)[] = [];
    let holding = true;
    const b = new Batcher<string, string>(async (xs) => {
      runs.push(xs);
      // Runs end when the test says, not after a time a loaded machine may overrun.
      if (holding) await new Promise<void>((r) => release.push(r));
      return xs;
    }, { maxBatch: 100, parallel: 2, log, keys: (x) => [x.split(':')[0]!] });
    const all = [b.submit('h:1')];
    await tick();
    all.push(b.submit('h:2'), b.submit('h:3'));
    await tick();
    expect(runs).toEqual([['h:1'], ['h:2']]); // h:2 started beside h:1 (it will wait on its locks in the database)
    holding = false;
    release.splice(0).forEach((r) => r());
    expect(await Promise.all(all)).toEqual(['h:1', 'h:2', 'h:3']);
  });
});
