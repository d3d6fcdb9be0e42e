import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.ts';
import { Batcher, type RunTurn } from '../src/workers/batcher.ts';

const log = createLogger('silent');
const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

/**
 * A run started beside the runs holding its keys (one hot key) overlaps their first round trips but takes its locks
 * only once they have ended: otherwise whichever transaction reached the lock statement first would apply first, and
 * a batch job's later events of a user could commit ahead of its earlier ones (seen: 84 of 834 guarded charges of one
 * user refused out of order, test/batch-producer.test.ts, on a loaded machine).
 */
describe('Batcher: a hot run locks after the runs ahead of it', () => {
  it('beforeLocks() of a run started beside one holding its key resolves only when that run ends', async () => {
    const events: string[] = [];
    const release = new Map<string, () => void>();
    const b = new Batcher<string, string>(async (xs, turn: RunTurn) => {
      const name = xs.join(',');
      events.push(`start ${name}`);
      await turn.beforeLocks();
      events.push(`lock ${name}`);
      await new Promise<void>((r) => release.set(name, r));
      events.push(`commit ${name}`);
      return xs;
    }, { maxBatch: 100, parallel: 2, log, keys: (x) => [x.split(':')[0]!] });
    const first = b.submit('h:1');
    await tick();
    const second = b.submit('h:2');
    await tick();
    // h:2 started beside h:1 (its first round trips overlap) but has not taken its locks.
    expect(events).toEqual(['start h:1', 'lock h:1', 'start h:2']);
    release.get('h:1')!();
    await first;
    await tick();
    expect(events).toEqual(['start h:1', 'lock h:1', 'start h:2', 'commit h:1', 'lock h:2']);
    release.get('h:2')!();
    expect(await second).toBe('h:2');
  });

  it('a run of other keys beside one in flight does not wait', async () => {
    const locked: string[] = [];
    const release: (() => void)[] = [];
    const b = new Batcher<string, string>(async (xs, turn: RunTurn) => {
      await turn.beforeLocks();
      locked.push(xs.join(','));
      await new Promise<void>((r) => release.push(r));
      return xs;
    }, { maxBatch: 100, parallel: 2, log, keys: (x) => [x.split(':')[0]!] });
    const all = [b.submit('a:1')];
    await tick();
    all.push(b.submit('b:1'));
    await tick();
    expect(locked).toEqual(['a:1', 'b:1']);
    release.splice(0).forEach((r) => r());
    await Promise.all(all);
  });
});
