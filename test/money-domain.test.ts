import { describe, expect, it } from 'vitest';
import { consume, grant, restore, type AccountState, type BatchState } from '../src/domain/account.ts';
import { naturalDay } from '../src/domain/calendar.ts';
import { planRefund, restoreParts, type ChargeLedger } from '../src/domain/refund.ts';

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

describe('natural days', () => {
  it('counts days in the given timezone', () => {
    const justBefore = Date.UTC(2026, 0, 1, 15, 59, 30); // 23:59:30 in Shanghai
    const justAfter = Date.UTC(2026, 0, 1, 16, 0, 30); // 00:00:30 the next day there
    expect(naturalDay(justBefore, 'Asia/Shanghai')).toBe('2026-01-01');
    expect(naturalDay(justAfter, 'Asia/Shanghai')).toBe('2026-01-02');
    expect(naturalDay(justAfter, 'UTC')).toBe('2026-01-01');
  });
});
