import { burnOrder, isLive, type Allocation, type BatchState, type DebtState, type RestorePart } from './account.ts';

/**
 * One charge, as refunds see it: the batches it burned, its debt part (live: what is still unpaid, which batches
 * paid the rest), and what earlier refunds already took from each.
 */
export interface ChargeLedger {
  burns: Allocation[];
  debt: DebtState | null;
  refunded: {
    /** Per batch the charge burned. */
    burn: Map<BatchState, bigint>;
    /** Per batch that paid the charge's debt. */
    paid: Map<BatchState, bigint>;
    /** Of the debt part still unpaid at the time (and, in histories from before debts were traced, any debt part). */
    unpaid: bigint;
  };
}

/** Something a refund can give back: unpaid debt of the charge, or points that now live in a batch. */
export type RefundSource =
  | { kind: 'unpaid'; debt: DebtState; left: bigint }
  | { kind: 'paid' | 'burn'; batch: BatchState; left: bigint };

export interface PlannedPart {
  source: RefundSource;
  amount: bigint;
}

function sum(values: Iterable<bigint>): bigint {
  let s = 0n;
  for (const v of values) s += v;
  return s;
}

/** What is left to refund of a charge, source by source (sources with nothing left are omitted). */
export function refundSources(c: ChargeLedger): RefundSource[] {
  const out: RefundSource[] = [];
  for (const a of c.burns) {
    const left = a.amount - (c.refunded.burn.get(a.batch) ?? 0n);
    if (left > 0n) out.push({ kind: 'burn', batch: a.batch, left });
  }
  if (!c.debt) return out;
  // The debt part is only what the charge put into debt, however it was paid since: never give back more.
  let debtLeft = c.debt.amount - c.refunded.unpaid - sum(c.refunded.paid.values());
  const unpaid = c.debt.remaining < debtLeft ? c.debt.remaining : debtLeft; // Stryker: `<=` equivalent (tie)
  if (unpaid > 0n) out.push({ kind: 'unpaid', debt: c.debt, left: unpaid });
  // Stryker: equivalent — `unpaid > 0n ?` → true or `>=`: unpaid < 0 only when debtLeft < 0, and then no payer gets
  // anything either way (debtLeft stays ≤ 0).
  debtLeft -= unpaid > 0n ? unpaid : 0n;
  for (const p of c.debt.paidBy) {
    const mine = p.amount - (c.refunded.paid.get(p.batch) ?? 0n);
    const left = mine < debtLeft ? mine : debtLeft; // Stryker: `<=` equivalent (tie)
    if (left <= 0n) continue;
    debtLeft -= left;
    out.push({ kind: 'paid', batch: p.batch, left });
  }
  return out;
}

export function leftToRefund(c: ChargeLedger): bigint {
  return sum(refundSources(c).map((s) => s.left));
}

/**
 * Which parts of a charge a refund of `amount` takes, undoing the charge newest-first: its debt part (what is
 * still unpaid lowers the debt; what batches paid goes back to them), then the batches it burned in reverse burn
 * order (never-expiring and latest-expiring first), and only then the parts whose batch is no longer live at
 * `nowMs` — those count as refunded but are not revived, so a partial refund gives back as much as it can. The
 * caller checks `amount` ≤ leftToRefund.
 */
export function planRefund(c: ChargeLedger, amount: bigint, nowMs: number): PlannedPart[] {
  const sources = refundSources(c);
  const alive = (s: RefundSource) => s.kind === 'unpaid' || isLive(s.batch, nowMs);
  // Stryker: equivalent — the `unpaid` arm (→ false, "") is for the type checker: only batch sources are sorted.
  const batchOf = (s: RefundSource) => (s.kind === 'unpaid' ? null : s.batch);
  const byBatchDesc = (a: RefundSource, b: RefundSource) => burnOrder(batchOf(b)!, batchOf(a)!);
  const order = [
    ...sources.filter((s) => s.kind === 'unpaid'),
    ...sources.filter((s) => s.kind === 'paid' && alive(s)).sort(byBatchDesc),
    ...sources.filter((s) => s.kind === 'burn' && alive(s)).sort(byBatchDesc),
    ...sources.filter((s) => !alive(s)),
  ];
  const plan: PlannedPart[] = [];
  let want = amount;
  for (const s of order) {
    if (want === 0n) break;
    const take = s.left < want ? s.left : want; // Stryker: `<=` equivalent (tie)
    want -= take;
    plan.push({ source: s, amount: take });
  }
  return plan;
}

/** The plan as parts for `restore`. */
export function restoreParts(plan: PlannedPart[]): RestorePart[] {
  return plan.map((p) => (p.source.kind === 'unpaid' ? { debt: p.source.debt, amount: p.amount } : { batch: p.source.batch, amount: p.amount }));
}

/** Takes a planned refund off what is left of the charge. */
export function takeRefund(c: ChargeLedger, plan: PlannedPart[]): void {
  for (const { source, amount } of plan) {
    if (source.kind === 'unpaid') c.refunded.unpaid += amount;
    else {
      const map = source.kind === 'paid' ? c.refunded.paid : c.refunded.burn;
      map.set(source.batch, (map.get(source.batch) ?? 0n) + amount);
    }
  }
}
