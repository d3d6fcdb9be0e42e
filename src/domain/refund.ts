import { burnOrder, isLapsed, type BatchState } from './account.ts';

/** What is still refundable of one part of a charge: a batch it burned, or (batch null) its debt part. */
export interface RefundSource {
  batch: BatchState | null;
  left: bigint;
}

export interface PlannedPart {
  batch: BatchState | null;
  amount: bigint;
  /** False for a part whose batch has expired since: it counts as refunded but nothing comes back. */
  restorable: boolean;
}

function isDead(b: BatchState, nowMs: number): boolean {
  return b.expired || isLapsed(b, nowMs);
}

/**
 * Which parts of a charge a refund of `amount` takes, undoing the charge newest-first: its debt part, then
 * the batches it burned in reverse burn order (the never-expiring and latest-expiring first), and only then
 * the parts whose batch has expired since — those are not revived, so a partial refund gives back as much
 * as it can. The caller checks `amount` ≤ Σ left.
 */
export function planRefund(sources: RefundSource[], amount: bigint, nowMs: number): PlannedPart[] {
  const debt = sources.filter((s) => s.batch === null);
  const batches = sources.filter((s) => s.batch !== null) as { batch: BatchState; left: bigint }[];
  const live = batches.filter((s) => !isDead(s.batch, nowMs)).sort((a, b) => burnOrder(b.batch, a.batch));
  const dead = batches.filter((s) => isDead(s.batch, nowMs));
  const plan: PlannedPart[] = [];
  let want = amount;
  for (const s of [...debt, ...live, ...dead]) {
    if (want === 0n) break;
    const take = s.left < want ? s.left : want;
    if (take === 0n) continue;
    want -= take;
    plan.push({ batch: s.batch, amount: take, restorable: s.batch === null || !isDead(s.batch, nowMs) });
  }
  return plan;
}
