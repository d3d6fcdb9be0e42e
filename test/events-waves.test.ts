import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { wavesOf, type AcceptedEvent } from '../src/http/routes/events-enqueue.ts';

const ev = (queue: string, user: string, receiver = false): AcceptedEvent => ({
  queue,
  payload: receiver ? { type: 'reward.event', event_id: 'x', receiver_user_id: user } : { type: 'grant', event_id: 'x', user_id: user },
});

describe('wavesOf: the order POST /v1/events?wait=true enqueues a call in', () => {
  it('keeps a user on one queue in one wave and opens a wave when the user moves to another queue', () => {
    expect(wavesOf([ev('grants', 'u'), ev('charges', 'u'), ev('grants', 'v')])).toEqual([[0, 2], [1]]);
    expect(wavesOf([ev('grants', 'u'), ev('grants', 'u'), ev('charges', 'u'), ev('grants', 'u')])).toEqual([[0, 1], [2], [3]]);
    expect(wavesOf([ev('grants', 'u', true), ev('charges', 'u')])).toEqual([[0], [1]]);
  });

  it('property: every index once, waves in index order, and two events of a user on different queues never share or invert a wave', () => {
    const arb = fc.array(fc.record({ q: fc.constantFrom('grants', 'charges', 'affinity-events'), u: fc.constantFrom('a', 'b', 'c'), r: fc.boolean() }), { maxLength: 60 });
    fc.assert(
      fc.property(arb, (spec) => {
        const events = spec.map((s) => ev(s.q, s.u, s.r));
        const waves = wavesOf(events);
        const waveOf = new Map<number, number>();
        waves.forEach((w, k) => {
          expect(w).toEqual([...w].sort((x, y) => x - y));
          for (const i of w) waveOf.set(i, k);
        });
        expect([...waveOf.keys()].sort((x, y) => x - y)).toEqual(events.map((_, i) => i));
        for (let i = 0; i < events.length; i++)
          for (let j = i + 1; j < events.length; j++) {
            if (spec[i]!.u !== spec[j]!.u) continue;
            if (spec[i]!.q === spec[j]!.q) expect(waveOf.get(i)!).toBeLessThanOrEqual(waveOf.get(j)!);
            else expect(waveOf.get(i)!).toBeLessThan(waveOf.get(j)!);
          }
      }),
    );
  });
});
