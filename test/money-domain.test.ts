import { describe, expect, it } from 'vitest';
import { consume, grant, restore, type AccountState, type BatchState } from '../src/domain/account.ts';
import { naturalDay } from '../src/domain/calendar.ts';
import { planRefund } from '../src/domain/refund.ts';

function account(): AccountState {
  return { id: 1n, userId: 'u', asset: 'credits', balance: 0n, debt: 0n, totalGranted: 0n, totalConsumed: 0n, totalExpired: 0n, batches: [], touched: new Set() };
}
let nextId = 1n;
function give(acct: AccountState, amount: bigint, expiresAt: number | null): BatchState {
  const draft = grant(acct, { amount, expiresAt, source: 's', sourceId: null, batchId: nextId++, entryId: 0n });
  return draft.batch!;
}

describe('refund planning', () => {
  it('undoes a charge newest-first: debt part, then latest-expiring batches, expired parts last and unrestorable', () => {
    const acct = account();
    const soon = give(acct, 10n, 1_000);
    const never = give(acct, 10n, null);
    const charge = consume(acct, 25n, 'postpaid')!; // 10 from soon, 10 from never, 5 as debt
    expect(acct.debt).toBe(5n);
    const sources = [{ batch: null, left: 5n }, ...charge.allocations.map((a) => ({ batch: a.batch, left: a.amount }))];
    const plan = planRefund(sources, 18n, 2_000); // `soon` has lapsed by now
    expect(plan.map((p) => [p.batch?.id ?? null, p.amount, p.restorable])).toEqual([
      [null, 5n, true],
      [never.id, 10n, true],
      [soon.id, 3n, false],
    ]);
  });

  it('restore pays debt first and keeps balance = Σ remaining − debt and the totals consistent', () => {
    const acct = account();
    const b = give(acct, 10n, null);
    consume(acct, 10n, 'postpaid');
    consume(acct, 4n, 'postpaid'); // debt 4, b is empty
    const draft = restore(acct, [{ batch: b, amount: 6n }], { id: 99n, source: 'refund', sourceId: null });
    expect(draft).toMatchObject({ kind: 'refund', amount: 6n, balanceBefore: -4n, balanceAfter: 2n });
    expect(acct.debt).toBe(0n);
    expect(b.remaining).toBe(2n);
    expect(acct.batches).toContain(b);
    expect(acct.balance).toBe(acct.totalGranted - acct.totalConsumed - acct.totalExpired);
    expect(acct.totalConsumed).toBe(8n);
  });

  it('a debt part whose debt was paid since comes back as a new never-expiring batch', () => {
    const acct = account();
    consume(acct, 5n, 'postpaid');
    give(acct, 5n, null); // pays the debt; this batch starts empty
    const draft = restore(acct, [{ batch: null, amount: 5n }], { id: 77n, source: 'refund', sourceId: 'c1' });
    expect(draft.batch).toMatchObject({ id: 77n, amount: 5n, remaining: 5n, expiresAt: null, isNew: true });
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
