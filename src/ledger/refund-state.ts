import type { BatchState } from '../domain/account.ts';
import { planRefund, type PlannedPart, type RefundSource } from '../domain/refund.ts';
import type { LedgerCommand } from './commands.ts';
import type { ChargePartsRow, ChargeEntryRow } from './sql/refunds.ts';
import type { PendingEntry } from './write.ts';

/** What is left refundable of one charge, part by part, as refunds of it are applied in this transaction. */
export interface ChargeRefundState {
  charge: bigint | PendingEntry;
  sourceType: string;
  model: string | null;
  occurredAt: Date | null;
  sources: RefundSource[];
  /** Plans a refund of `amount` (≤ what is left) and takes it off what is left. */
  take(amount: bigint, nowMs: number): PlannedPart[];
}

export interface RefundLookups {
  chargeParts: Map<bigint, ChargePartsRow>;
  batchById: Map<bigint, BatchState>;
  loadedClosed: Map<bigint, BatchState>;
  appliedCharges: Map<number, PendingEntry>;
  cmds: LedgerCommand[];
}

function makeState(base: Omit<ChargeRefundState, 'take'>): ChargeRefundState {
  return {
    ...base,
    take(amount, nowMs) {
      const plan = planRefund(base.sources, amount, nowMs);
      for (const part of plan) base.sources.find((s) => s.batch === part.batch)!.left -= part.amount;
      return plan;
    },
  };
}

/**
 * Builds the refund state of a charge applied earlier (its allocations minus every part earlier refunds
 * took, read from `refunds.parts`) or earlier in this batch (its draft). null = the charge charged nothing.
 */
export function buildRefundState(ref: { entry: ChargeEntryRow } | { index: number }, l: RefundLookups): ChargeRefundState | null {
  if ('index' in ref) {
    const entry = l.appliedCharges.get(ref.index);
    if (!entry) return null;
    const total = -entry.draft.amount;
    const sources: RefundSource[] = entry.draft.allocations.map((a) => ({ batch: a.batch, left: a.amount }));
    const allocated = sources.reduce((s, x) => s + x.left, 0n);
    sources.unshift({ batch: null, left: total - allocated });
    const usage = entry.meta?.usage as { model?: string } | null;
    return makeState({ charge: entry, sourceType: entry.meta!.sourceType, model: usage?.model ?? null, occurredAt: entry.meta!.occurredAt, sources });
  }
  const e = ref.entry;
  const total = -e.amount;
  const parts = l.chargeParts.get(BigInt(e.entry_id));
  const takenByBatch = new Map<string, bigint>();
  let takenFromDebt = 0n;
  for (const p of parts?.refunded ?? []) {
    if (p.batch_id === null) takenFromDebt += BigInt(p.amount);
    else takenByBatch.set(p.batch_id, (takenByBatch.get(p.batch_id) ?? 0n) + BigInt(p.amount));
  }
  let allocated = 0n;
  const sources: RefundSource[] = [];
  for (const a of parts?.allocations ?? []) {
    const id = BigInt(a.batch_id);
    const batch = l.batchById.get(id) ?? l.loadedClosed.get(id);
    if (!batch) throw new Error(`batch ${a.batch_id} of charge entry ${e.entry_id} not loaded`);
    allocated += BigInt(a.amount);
    sources.push({ batch, left: BigInt(a.amount) - (takenByBatch.get(a.batch_id) ?? 0n) });
  }
  sources.unshift({ batch: null, left: total - allocated - takenFromDebt });
  return makeState({ charge: e.entry_id, sourceType: e.source_type ?? 'unknown', model: e.usage?.model ?? null, occurredAt: e.occurred_at, sources });
}
