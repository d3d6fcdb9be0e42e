import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LimitError, MAX_AMOUNT, balanceAt, burnOrder, consume as consumeAt, expireLapsed, grant, restore, type AccountState, type EntryDraft } from '../src/domain/account.ts';

function account(): AccountState {
  return { id: 1n, userId: 'u', asset: 'points', balance: 0n, debt: 0n, totalGranted: 0n, totalConsumed: 0n, totalExpired: 0n, batches: [], debts: [], touched: new Set(), touchedDebts: new Set() };
}
let nextId = 1n;
/** A grant at time `now` (default 0): its own entry. */
function give(acct: AccountState, amount: number, expiresAt: number | null, now = 0): EntryDraft {
  const id = nextId++;
  return grant(acct, { amount: BigInt(amount), expiresAt, source: 'test', sourceId: null, batchId: id, entryId: id }, now).entry!;
}
/** A charge at time `now` (default 0): its entry, or null when a guarded charge is refused. */
function consume(acct: AccountState, amount: bigint, policy: 'guarded' | 'postpaid', now = 0, held = 0n): EntryDraft | null {
  return consumeAt(acct, amount, policy, held, now).entry;
}
function invariants(acct: AccountState) {
  const open = acct.batches.reduce((s, b) => s + b.remaining, 0n);
  expect(acct.balance).toBe(open - acct.debt);
  expect(acct.debt).toBe(acct.debts.reduce((s, d) => s + d.remaining, 0n));
  expect(acct.balance).toBe(acct.totalGranted - acct.totalConsumed - acct.totalExpired);
  if (acct.debt > 0n) expect(open).toBe(0n);
  for (const b of acct.batches) expect(b.remaining >= 0n && b.remaining <= b.amount).toBe(true);
  expect([...acct.batches].sort(burnOrder)).toEqual(acct.batches);
}

describe('FIFO burn, debt and expiry', () => {
  it('burns the batch that expires first, never-expiring last, then by creation', () => {
    const a = account();
    const never = give(a, 10, null).batch!;
    const late = give(a, 10, 3000).batch!;
    const early = give(a, 10, 1000).batch!;
    const early2 = give(a, 10, 1000).batch!;
    const e = consume(a, 25n, 'guarded')!;
    expect(e.allocations.map((x) => [x.batch.id, x.amount])).toEqual([
      [early.id, 10n],
      [early2.id, 10n],
      [late.id, 5n],
    ]);
    expect(never.remaining).toBe(10n);
    invariants(a);
  });

  it('guarded never overdraws; postpaid turns the shortfall into debt', () => {
    const a = account();
    give(a, 10, null);
    expect(consume(a, 11n, 'guarded')).toBeNull();
    expect(a.balance).toBe(10n);
    const e = consume(a, 15n, 'postpaid')!;
    expect(e).toMatchObject({ amount: -15n, balanceBefore: 10n, balanceAfter: -5n });
    expect(a.debt).toBe(5n);
    invariants(a);
    expect(consume(a, 1n, 'guarded')).toBeNull(); // blocked until topped up
  });

  it('a grant pays debt first; its batch keeps only the rest, so expiry cannot take back what debt used', () => {
    const a = account();
    consume(a, 30n, 'postpaid');
    const g = give(a, 50, 1000);
    expect(g).toMatchObject({ amount: 50n, balanceBefore: -30n, balanceAfter: 20n });
    expect(g.batch!.remaining).toBe(20n);
    const expired = expireLapsed(a, 1000);
    expect(expired.map((e) => e.amount)).toEqual([-20n]);
    expect(a.balance).toBe(0n);
    invariants(a);
  });

  it('a batch past expires_at does not count at read time and is never burned', () => {
    const a = account();
    give(a, 10, 500);
    give(a, 5, null);
    expect(balanceAt(a, 499)).toBe(15n);
    expect(balanceAt(a, 500)).toBe(5n);
    expireLapsed(a, 600);
    expect(consume(a, 6n, 'guarded', 600)).toBeNull();
    invariants(a);
  });

  it('every function closes what lapsed at its clock first: nothing is burned, counted or refilled at or after expiry', () => {
    const a = account();
    const soon = give(a, 10, 100).batch!;
    give(a, 5, null);
    // No sweep in between: consume itself sees the lapse, at the expiry instant already.
    const { entries, entry } = consumeAt(a, 6n, 'postpaid', 0n, 100);
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([['expire', -10n], ['consume', -6n]]);
    expect(entry!.allocations.map((x) => x.amount)).toEqual([5n]);
    expect(a.debt).toBe(1n);
    // restore will not refill a batch that lapsed: that part is not revived.
    const parts = [{ batch: soon, amount: 3n }];
    expect(restore(a, parts, 100).entry).toBeNull();
    expect(parts[0]).toMatchObject({ restored: false });
    expect(soon.remaining).toBe(10n);
    invariants(a);
  });

  it('a grant whose expiry is not after its clock is recorded and expires at once: nothing spendable, no debt paid', () => {
    const a = account();
    consume(a, 7n, 'postpaid', 50);
    for (const expiresAt of [49, 50]) {
      const { entries } = grant(a, { amount: 20n, expiresAt, source: 't', sourceId: null, batchId: nextId++, entryId: 0n }, 50);
      expect(entries.map((e) => [e.kind, e.amount, e.balanceAfter])).toEqual([['grant', 20n, 13n], ['expire', -20n, -7n]]);
      expect(entries[0]!.payments).toEqual([]);
    }
    expect(a).toMatchObject({ balance: -7n, debt: 7n, totalGranted: 40n, totalExpired: 40n, batches: [] });
    expect(consume(a, 1n, 'guarded', 50)).toBeNull();
    const live = give(a, 20, 51, 50); // one ms later: live, and it pays the debt
    expect(live.payments.map((p) => p.amount)).toEqual([7n]);
    expect(a.balance).toBe(13n);
    invariants(a);
  });

  it('refuses amounts that would take a total past 2^53 − 1, before changing anything', () => {
    const a = account();
    give(a, Number(MAX_AMOUNT), null);
    const before = structuredClone({ ...a, touched: undefined, touchedDebts: undefined });
    expect(() => give(a, 1, null)).toThrow(LimitError);
    consume(a, MAX_AMOUNT, 'postpaid');
    expect(() => consume(a, 1n, 'postpaid')).toThrow(LimitError);
    expect(() => consumeAt(a, MAX_AMOUNT + 1n, 'guarded', 0n, 0)).toThrow(LimitError);
    expect(a.totalConsumed).toBe(MAX_AMOUNT);
    expect(before.totalGranted).toBe(a.totalGranted);
    invariants(a);
  });

  it('property: any sequence of grants, charges and expiries keeps every invariant', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('grant' as const), amount: fc.integer({ min: 1, max: 1000 }), exp: fc.option(fc.integer({ min: 0, max: 100 })) }),
      fc.record({ k: fc.constant('charge' as const), amount: fc.integer({ min: 1, max: 1000 }), guarded: fc.boolean() }),
      fc.record({ k: fc.constant('tick' as const), to: fc.integer({ min: 0, max: 100 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const a = account();
        let now = 0;
        let consumed = 0n;
        for (const o of ops) {
          if (o.k === 'tick') {
            now = Math.max(now, o.to);
            expireLapsed(a, now);
          } else if (o.k === 'grant') {
            give(a, o.amount, o.exp === null ? null : now + o.exp + 1, now);
          } else {
            const before = balanceAt(a, now);
            const e = consume(a, BigInt(o.amount), o.guarded ? 'guarded' : 'postpaid', now);
            if (e) {
              consumed += BigInt(o.amount);
              const burned = e.allocations.reduce((s, x) => s + x.amount, 0n);
              expect(burned <= BigInt(o.amount)).toBe(true);
              expect(burned).toBe(before > 0n ? (before < BigInt(o.amount) ? before : BigInt(o.amount)) : 0n);
            } else {
              expect(o.guarded && before < BigInt(o.amount)).toBe(true);
            }
          }
          invariants(a);
        }
        expect(a.totalConsumed).toBe(consumed);
      }),
      { numRuns: 300 },
    );
  });
});
