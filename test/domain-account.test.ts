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

describe('guarded charges', () => {
  it('apply when the available balance (balance − held) covers them exactly, and are refused one point above', () => {
    const a = account();
    give(a, 10, null);
    expect(consume(a, 8n, 'guarded', 0, 3n)).toBeNull();
    expect(consume(a, 7n, 'guarded', 0, 3n)).toMatchObject({ amount: -7n, balanceAfter: 3n });
    expect(consume(a, 3n, 'guarded')).toMatchObject({ balanceAfter: 0n });
    invariants(a);
  });

  it('that cannot be afforded are refused, never a LimitError, even when their amount would overflow a total', () => {
    // total_consumed at the limit, nothing left: refused, like any unaffordable charge.
    const spent = account();
    give(spent, Number(MAX_AMOUNT), null);
    consume(spent, MAX_AMOUNT, 'postpaid');
    expect(consume(spent, 1n, 'guarded')).toBeNull();
    // In debt up to the limit: the debt does not make room.
    const owing = account();
    consume(owing, MAX_AMOUNT, 'postpaid');
    expect(consume(owing, 1n, 'guarded')).toBeNull();
    // Held points do not make room either.
    const holding = account();
    give(holding, Number(MAX_AMOUNT), null);
    consume(holding, MAX_AMOUNT - 5n, 'postpaid');
    expect(consume(holding, 6n, 'guarded', 0, 5n)).toBeNull();
    expect(holding.totalConsumed).toBe(MAX_AMOUNT - 5n);
  });
});

describe('burn order', () => {
  it('batches with the same expiry burn in creation order, also after a refund put the older one back', () => {
    for (const expiresAt of [null, 5_000]) {
      const a = account();
      const older = give(a, 10, expiresAt).batch!;
      const newer = give(a, 10, expiresAt).batch!;
      consume(a, 10n, 'postpaid'); // empties `older`, which leaves the open list
      expect(a.batches).toEqual([newer]);
      restore(a, [{ batch: older, amount: 4n }], 0);
      expect(a.batches).toEqual([older, newer]);
      expect(consume(a, 5n, 'guarded')!.allocations.map((x) => [x.batch, x.amount])).toEqual([
        [older, 4n],
        [newer, 1n],
      ]);
      invariants(a);
    }
  });
});

describe('debts', () => {
  it('a grant pays several debts oldest first; the open list keeps only batches that still hold something', () => {
    const a = account();
    consume(a, 3n, 'postpaid');
    consume(a, 4n, 'postpaid');
    const [first, second] = a.debts;
    const g = give(a, 10, null);
    expect(g.payments.map((p) => [p.debt, p.batch, p.amount])).toEqual([
      [first, g.batch, 3n],
      [second, g.batch, 4n],
    ]);
    expect(a.debts).toEqual([]);
    expect(give(a, 1, null).payments).toEqual([]); // no debt left: nothing to pay
    // A grant of exactly the debt leaves its batch empty: it is not kept open.
    consume(a, 11n, 'postpaid'); // 4 burned, 7 into debt
    const payer = give(a, 7, null);
    expect(payer.batch!.remaining).toBe(0n);
    expect(a.batches).toEqual([]);
    invariants(a);
  });

  it('one refund can pay a debt from several batches: one payment per debt and batch', () => {
    const a = account();
    const x = give(a, 5, 1_000).batch!;
    const y = give(a, 5, null).batch!;
    consume(a, 10n, 'postpaid'); // burns x and y
    consume(a, 8n, 'postpaid'); // all debt
    const debt = a.debts[0]!;
    const { entry } = restore(a, [{ batch: y, amount: 5n }, { batch: x, amount: 5n }], 0);
    expect(entry!.allocations.map((al) => [al.batch, al.amount])).toEqual([
      [y, 5n],
      [x, 5n],
    ]);
    expect(entry!.payments.map((p) => [p.debt, p.batch, p.amount])).toEqual([
      [debt, x, 5n],
      [debt, y, 3n],
    ]);
    expect(debt.paidBy.map((p) => [p.batch, p.amount])).toEqual([
      [x, 5n],
      [y, 3n],
    ]);
    expect(a.batches).toEqual([y]);
    invariants(a);
  });

  it('a batch that pays one debt twice (refilled by refunds in between) is one payer of that debt', () => {
    const a = account();
    const x = give(a, 10, null).batch!;
    consume(a, 10n, 'postpaid');
    consume(a, 5n, 'postpaid');
    const debt = a.debts[0]!;
    restore(a, [{ batch: x, amount: 3n }], 0);
    restore(a, [{ batch: x, amount: 1n }], 0);
    expect(debt.paidBy.map((p) => [p.batch, p.amount])).toEqual([[x, 4n]]);
    expect(debt.remaining).toBe(1n);
    invariants(a);
  });

  it('an account whose debt no open debt accounts for is refused, not guessed at', () => {
    const a = { ...account(), balance: -5n, debt: 5n };
    expect(() => give(a, 10, null)).toThrow('account 1: debt 5 has no open debt to pay');
  });
});

describe('refunds (restore)', () => {
  it('a partial refund of an unpaid debt lowers that debt by the part only', () => {
    const a = account();
    consume(a, 10n, 'postpaid');
    const debt = a.debts[0]!;
    const { entry } = restore(a, [{ debt, amount: 4n }], 0);
    expect(entry).toMatchObject({ kind: 'refund', amount: 4n, balanceBefore: -10n, balanceAfter: -6n });
    expect(entry!.allocations).toEqual([]);
    expect(debt).toMatchObject({ remaining: 6n, refunded: 4n });
    expect(a.debts).toEqual([debt]);
    expect(a.debt).toBe(6n);
    restore(a, [{ debt, amount: 6n }], 0);
    expect(a.debts).toEqual([]);
    invariants(a);
  });

  it('two parts for one batch (its burn, and the debt it paid) come back as one allocation', () => {
    const a = account();
    const x = give(a, 10, null).batch!;
    consume(a, 4n, 'postpaid');
    consume(a, 8n, 'postpaid'); // 6 from x, 2 into debt
    restore(a, [{ batch: x, amount: 4n }], 0); // refills x, which pays that debt
    const { entry } = restore(a, [{ batch: x, amount: 2n }, { batch: x, amount: 6n }], 0);
    expect(entry!.allocations.map((al) => [al.batch, al.amount])).toEqual([[x, 8n]]);
    expect(x.remaining).toBe(10n);
    invariants(a);
  });

  it('refuses a part larger than what is left to give back, before changing anything', () => {
    const a = account();
    const x = give(a, 10, null).batch!;
    consume(a, 4n, 'postpaid');
    consume(a, 8n, 'postpaid');
    const debt = a.debts[0]!;
    expect(() => restore(a, [{ debt, amount: 3n }], 0)).toThrow(`refund of 3 exceeds debt 0's unpaid 2`);
    expect(() => restore(a, [{ batch: x, amount: 11n }], 0)).toThrow(`batch ${x.id} would hold more than it was granted`);
    expect(debt.remaining).toBe(2n);
    expect(x.remaining).toBe(0n);
  });
});

describe('what the SQL layer writes', () => {
  it('loaded batches and debts that changed are marked touched; new ones are inserted, never updated', () => {
    const a = account();
    const loaded = give(a, 10, 100).batch!;
    consume(a, 30n, 'postpaid');
    const oldDebt = a.debts[0]!;
    // Commit: everything made so far is now loaded state.
    loaded.isNew = false;
    oldDebt.isNew = false;
    a.touched.clear();
    a.touchedDebts.clear();
    const fresh = give(a, 5, null);
    expect(fresh.batch!.isNew).toBe(true);
    expect(fresh.payments.map((p) => p.debt)).toEqual([oldDebt]);
    expect([...a.touched]).toEqual([]);
    expect([...a.touchedDebts]).toEqual([oldDebt]);
    const charge = consume(a, 3n, 'postpaid')!;
    expect(charge.debt!.isNew).toBe(true);
    restore(a, [{ debt: charge.debt!, amount: 1n }], 0);
    expect([...a.touchedDebts]).toEqual([oldDebt]);
    restore(a, [{ batch: loaded, amount: 2n }], 0); // refilled, and at once emptied again by the debt
    expect(loaded.remaining).toBe(0n);
    expect([...a.touched]).toEqual([loaded]);
  });

  it('an expiry marks the loaded batch it closes expired and touched', () => {
    const a = account();
    const loaded = give(a, 10, 100).batch!;
    loaded.isNew = false;
    expect(expireLapsed(a, 100).map((e) => [e.kind, e.amount, e.batch])).toEqual([['expire', -10n, loaded]]);
    expect(loaded).toMatchObject({ expired: true, remaining: 10n });
    expect([...a.touched]).toEqual([loaded]);
  });
});

describe('limits', () => {
  it('a LimitError is named and says which amount or total would pass 2^53 − 1', () => {
    const a = account();
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return [(e as Error).name, (e as Error).message];
      }
      return null;
    };
    expect(err(() => give(a, Number(MAX_AMOUNT + 1n), null))).toEqual(['LimitError', 'amount would exceed 2^53 − 1']);
    give(a, Number(MAX_AMOUNT), null);
    expect(err(() => give(a, 1, null))).toEqual(['LimitError', 'total_granted would exceed 2^53 − 1']);
    expect(err(() => consumeAt(a, MAX_AMOUNT + 1n, 'postpaid', 0n, 0))).toEqual(['LimitError', 'amount would exceed 2^53 − 1']);
    consume(a, MAX_AMOUNT, 'postpaid');
    expect(err(() => consume(a, 1n, 'postpaid'))).toEqual(['LimitError', 'total_consumed would exceed 2^53 − 1']);
  });
});
