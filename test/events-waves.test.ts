import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { wavesOf, type AcceptedEvent } from '../src/http/routes/events-enqueue.ts';

const ev = (queue: string, user: string, receiver = false): AcceptedEvent => ({
  queue,
  payload: receiver ? { type: 'reward.event', event_id: 'x', receiver_user_id: user } : { type: 'grant', event_id: 'x', user_id: user },
});
const charge = (id: string, user: string): AcceptedEvent => ({ queue: 'charges', payload: { type: 'charge', event_id: id, user_id: user } });
const refund = (id: string, chargeId: string): AcceptedEvent => ({ queue: 'charges', payload: { type: 'refund', event_id: id, charge_event_id: chargeId } });

/** Each event's wave, checking on the way that every index is in exactly one wave and waves list indexes in order. */
function waveIndex(waves: number[][], n: number): Map<number, number> {
  const waveOf = new Map<number, number>();
  waves.forEach((w, k) => {
    expect(w).toEqual([...w].sort((x, y) => x - y));
    for (const i of w) {
      expect(waveOf.has(i)).toBe(false);
      waveOf.set(i, k);
    }
  });
  expect([...waveOf.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
  return waveOf;
}

describe('wavesOf: the order POST /v1/events?wait=true enqueues a call in', () => {
  it('one job per event: each of a user\'s events waits for the one before (separate jobs carry no order), other users share waves', () => {
    expect(wavesOf([ev('grants', 'u'), ev('charges', 'u'), ev('grants', 'v')])).toEqual([[0, 2], [1]]);
    expect(wavesOf([ev('grants', 'u'), ev('grants', 'u'), ev('charges', 'u'), ev('grants', 'v')])).toEqual([[0, 3], [1], [2]]);
    expect(wavesOf([ev('grants', 'u', true), ev('charges', 'u')])).toEqual([[0], [1]]);
  });

  it('?mode=batch: a user stays in one wave on one queue (a batch job keeps a user\'s order) and moves on with the queue', () => {
    expect(wavesOf([ev('grants', 'u'), ev('grants', 'u'), ev('charges', 'u'), ev('grants', 'u')], true)).toEqual([[0, 1], [2], [3]]);
    expect(wavesOf([ev('grants', 'u'), ev('charges', 'u'), ev('grants', 'v')], true)).toEqual([[0, 2], [1]]);
  });

  it('never puts a refund in a wave before its charge (it would wait for a charge held back behind it)', () => {
    // The probe's case: the charge opens wave 1 (after the grant), so the refund, which names no user, must follow it.
    expect(wavesOf([ev('grants', 'u'), charge('c', 'u'), refund('r', 'c')], true)).toEqual([[0], [1, 2]]);
    expect(wavesOf([ev('grants', 'u'), charge('c', 'u'), refund('r', 'c')])).toEqual([[0], [1], [2]]);
    // ...and counts as the charge's user's event from then on.
    expect(wavesOf([charge('c', 'u'), refund('r', 'c'), ev('grants', 'u')], true)).toEqual([[0, 1], [2]]);
    // A refund sent before its charge goes last; a refund of a charge outside the call is ordered against nothing.
    expect(wavesOf([ev('grants', 'u'), refund('r', 'c'), charge('c', 'u')])).toEqual([[0], [1, 2]]);
    expect(wavesOf([ev('grants', 'u'), refund('r', 'elsewhere')])).toEqual([[0, 1]]);
    expect(wavesOf([refund('r', 'c'), charge('c', 'u')])).toEqual([[0, 1]]);
  });

  it('property: two events of a user never share or invert a wave (batched: unless both on one queue, then never invert)', () => {
    const arb = fc.array(fc.record({ q: fc.constantFrom('grants', 'charges', 'affinity-events'), u: fc.constantFrom('a', 'b', 'c'), r: fc.boolean() }), { maxLength: 60 });
    fc.assert(
      fc.property(arb, fc.boolean(), (spec, batched) => {
        const events = spec.map((s) => ev(s.q, s.u, s.r));
        const waveOf = waveIndex(wavesOf(events, batched), events.length);
        for (let i = 0; i < events.length; i++)
          for (let j = i + 1; j < events.length; j++) {
            if (spec[i]!.u !== spec[j]!.u) continue;
            if (batched && spec[i]!.q === spec[j]!.q) expect(waveOf.get(i)!).toBeLessThanOrEqual(waveOf.get(j)!);
            else expect(waveOf.get(i)!).toBeLessThan(waveOf.get(j)!);
          }
      }),
    );
  });

  it('property: a refund is never in an earlier wave than its charge, in either mode', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('grant' as const), u: fc.constantFrom('a', 'b') }),
      fc.record({ k: fc.constant('charge' as const), u: fc.constantFrom('a', 'b'), c: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ k: fc.constant('refund' as const), c: fc.integer({ min: 0, max: 7 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), fc.boolean(), (ops, batched) => {
        const seen = new Set<string>();
        const events = ops.flatMap((o, i): AcceptedEvent[] => {
          if (o.k === 'grant') return [ev('grants', o.u)];
          if (o.k === 'refund') return [refund(`r${i}`, `c${o.c}`)];
          if (seen.has(`c${o.c}`)) return []; // one charge per event_id in a call, as the route enforces
          seen.add(`c${o.c}`);
          return [charge(`c${o.c}`, o.u)];
        });
        const waveOf = waveIndex(wavesOf(events, batched), events.length);
        events.forEach((e, i) => {
          if (e.payload.type !== 'refund') return;
          const c = events.findIndex((x) => x.payload.type === 'charge' && x.payload.event_id === e.payload.charge_event_id);
          if (c >= 0) expect(waveOf.get(i)!).toBeGreaterThanOrEqual(waveOf.get(c)!);
        });
      }),
    );
  });
});
