import { describe, expect, it } from 'vitest';
import { consume, grant, restore, type AccountState, type BatchState } from '../src/domain/account.ts';
import { naturalDay } from '../src/domain/calendar.ts';
import { leftToRefund, planRefund, refundSources, restoreParts, takeRefund, type ChargeLedger } from '../src/domain/refund.ts';

function account(): AccountState {
  return { id: 1n, userId: 'u', asset: 'credits', balance: 0n, debt: 0n, totalGranted: 0n, totalConsumed: 0n, totalExpired: 0n, batches: [], debts: [], touched: new Set(), touchedDebts: new Set() };
}
let nextId = 1n;
function give(acct: AccountState, amount: bigint, expiresAt: number | null, now = 0): BatchState {
  return grant(acct, { amount, expiresAt, source: 's', sourceId: null, batchId: nextId++, entryId: 0n }, now).entry!.batch!;
}
function chargeOf(acct: AccountState, amount: bigint, now = 0): ChargeLedger {
  const entry = consume(acct, amount, 'postpaid', 0n, now).entry!;
  return { burns: entry.allocations.map((a) => ({ ...a })), debt: entry.debt ?? null, refunded: { burn: new Map(), paid: new Map(), unpaid: 0n } };
}

describe('refund planning', () => {
  it('undoes a charge newest-first: debt part, then latest-expiring batches, expired parts last and unrestorable', () => {
    const acct = account();
    const soon = give(acct, 10n, 1_000);
    const never = give(acct, 10n, null);
    const charge = chargeOf(acct, 25n); // 10 from soon, 10 from never, 5 as debt
    expect(acct.debt).toBe(5n);
    const plan = planRefund(charge, 18n, 2_000); // `soon` has lapsed by now
    expect(plan.map((p) => [p.source.kind, p.source.kind === 'unpaid' ? null : p.source.batch.id, p.amount])).toEqual([
      ['unpaid', null, 5n],
      ['burn', never.id, 10n],
      ['burn', soon.id, 3n],
    ]);
    const parts = restoreParts(plan);
    restore(acct, parts, 2_000);
    expect(parts.map((p) => p.restored)).toEqual([true, true, false]);
  });

  it('restore pays debt first and keeps balance = Σ remaining − debt and the totals consistent', () => {
    const acct = account();
    const b = give(acct, 10n, null);
    consume(acct, 10n, 'postpaid', 0n, 0);
    consume(acct, 4n, 'postpaid', 0n, 0); // debt 4, b is empty
    const { entry } = restore(acct, [{ batch: b, amount: 6n }], 0);
    expect(entry).toMatchObject({ kind: 'refund', amount: 6n, balanceBefore: -4n, balanceAfter: 2n });
    expect(entry!.payments.map((p) => [p.batch, p.amount])).toEqual([[b, 4n]]);
    expect(acct.debt).toBe(0n);
    expect(b.remaining).toBe(2n);
    expect(acct.batches).toContain(b);
    expect(acct.balance).toBe(acct.totalGranted - acct.totalConsumed - acct.totalExpired);
    expect(acct.totalConsumed).toBe(8n);
  });

  it('a debt part whose debt was paid since goes back to the batch that paid it, with its expiry — never a new batch', () => {
    const acct = account();
    const charge = chargeOf(acct, 5n);
    const payer = give(acct, 5n, 5_000); // pays the debt; this batch starts empty
    expect(payer.remaining).toBe(0n);
    const plan = planRefund(charge, 5n, 0);
    expect(plan.map((p) => [p.source.kind, p.amount])).toEqual([['paid', 5n]]);
    const { entry } = restore(acct, [{ batch: payer, amount: 5n }], 0);
    expect(entry!.batch).toBeUndefined();
    expect(payer.remaining).toBe(5n);
    expect(acct.batches).toEqual([payer]);
    expect(acct.balance).toBe(5n);
  });
});

describe('refund planning: which parts come back', () => {
  const shown = (c: ChargeLedger, amount: bigint, now: number) =>
    planRefund(c, amount, now).map((p) => [p.source.kind, p.source.kind === 'unpaid' ? null : p.source.batch, p.amount]);

  it('gives back the latest-expiring batches first, never-expiring before all', () => {
    const acct = account();
    const soon = give(acct, 10n, 1_000);
    const late = give(acct, 10n, 9_000);
    const never = give(acct, 10n, null);
    const charge = chargeOf(acct, 30n);
    expect(refundSources(charge).map((s) => s.kind === 'unpaid' ? null : s.batch)).toEqual([soon, late, never]);
    expect(shown(charge, 15n, 0)).toEqual([
      ['burn', never, 10n],
      ['burn', late, 5n],
    ]);
    expect(shown(charge, 25n, 0)).toEqual([
      ['burn', never, 10n],
      ['burn', late, 10n],
      ['burn', soon, 5n],
    ]);
  });

  it('a later refund picks up where the earlier ones stopped: what is left shrinks by exactly what each took', () => {
    const acct = account();
    const soon = give(acct, 10n, 1_000);
    const never = give(acct, 10n, null);
    const charge = chargeOf(acct, 24n); // 10 + 10 burned, 4 into debt
    expect(leftToRefund(charge)).toBe(24n);
    const first = planRefund(charge, 6n, 0);
    restore(acct, restoreParts(first), 0);
    takeRefund(charge, first);
    expect(charge.refunded).toEqual({ burn: new Map([[never, 2n]]), paid: new Map(), unpaid: 4n });
    expect(leftToRefund(charge)).toBe(18n);
    expect(shown(charge, 18n, 0)).toEqual([
      ['burn', never, 8n],
      ['burn', soon, 10n],
    ]);
    const second = planRefund(charge, 9n, 0);
    takeRefund(charge, second);
    expect(charge.refunded.burn).toEqual(new Map([[never, 10n], [soon, 1n]]));
    expect(leftToRefund(charge)).toBe(9n);
  });

  it('a charge with no debt part has only its burns to give back', () => {
    const acct = account();
    const b = give(acct, 10n, null);
    const charge = chargeOf(acct, 4n);
    expect(charge.debt).toBeNull();
    expect(refundSources(charge)).toEqual([{ kind: 'burn', batch: b, left: 4n }]);
  });

  it('the debt part goes back to its payers newest-first, and live burns come back before a payer that has expired since', () => {
    const acct = account();
    const burned = give(acct, 5n, null);
    const charge = chargeOf(acct, 15n); // 5 burned, 10 into debt
    const early = give(acct, 4n, 500); // pays 4 of the debt, expires at 500
    const later = give(acct, 6n, 800); // pays the other 6
    expect(charge.debt!.paidBy.map((p) => [p.batch, p.amount])).toEqual([[early, 4n], [later, 6n]]);
    expect(shown(charge, 8n, 0)).toEqual([
      ['paid', later, 6n],
      ['paid', early, 2n],
    ]);
    // At 600 `early` has lapsed: it cannot be revived, so what can come back comes first.
    expect(shown(charge, 12n, 600)).toEqual([
      ['paid', later, 6n],
      ['burn', burned, 5n],
      ['paid', early, 1n],
    ]);
  });

  it('in a history from before debts were traced, a debt part already refunded leaves nothing more of it, however it was paid', () => {
    const x = give(account(), 5n, null);
    const y = give(account(), 5n, null);
    // The charge's 10 of debt was paid by x and y; an old-kind refund already gave back 5 of that debt part.
    const paid: ChargeLedger = {
      burns: [],
      debt: { id: 7n, amount: 10n, remaining: 0n, refunded: 0n, paidBy: [{ batch: x, amount: 5n }, { batch: y, amount: 5n }], isNew: false },
      refunded: { burn: new Map(), paid: new Map(), unpaid: 5n },
    };
    expect(refundSources(paid)).toEqual([{ kind: 'paid', batch: x, left: 5n }]);
    // Once x took its part back, nothing of the debt part is left.
    paid.refunded.paid.set(x, 5n);
    expect(refundSources(paid)).toEqual([]);
    // An old-kind refund of 8 lowered another charge's debt: this one still shows 4 unpaid, but only 2 are its to give.
    const unpaid: ChargeLedger = {
      burns: [],
      debt: { id: 8n, amount: 10n, remaining: 4n, refunded: 0n, paidBy: [{ batch: x, amount: 6n }], isNew: false },
      refunded: { burn: new Map(), paid: new Map(), unpaid: 8n },
    };
    expect(refundSources(unpaid).map((s) => [s.kind, s.left])).toEqual([['unpaid', 2n]]);
    expect(leftToRefund(unpaid)).toBe(2n);
    // 3 of it given back the old way: the 4 still unpaid come back first, then only 3 of what x paid.
    const both: ChargeLedger = {
      burns: [],
      debt: { id: 9n, amount: 10n, remaining: 4n, refunded: 0n, paidBy: [{ batch: x, amount: 6n }], isNew: false },
      refunded: { burn: new Map(), paid: new Map(), unpaid: 3n },
    };
    expect(refundSources(both).map((s) => [s.kind, s.left])).toEqual([['unpaid', 4n], ['paid', 3n]]);
  });
});

describe('natural days', () => {
  it('counts days in the given timezone', () => {
    const justBefore = Date.UTC(2026, 0, 1, 15, 59, 30); // 23:59:30 in Shanghai
    const justAfter = Date.UTC(2026, 0, 1, 16, 0, 30); // 00:00:30 the next day there
    expect(naturalDay(justBefore, 'Asia/Shanghai')).toBe('2026-01-01');
    expect(naturalDay(justAfter, 'Asia/Shanghai')).toBe('2026-01-02');
    expect(naturalDay(justAfter, 'UTC')).toBe('2026-01-01');
  });
});
