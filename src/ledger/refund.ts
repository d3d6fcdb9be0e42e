import { restore, type AccountState, type Allocation, type BatchState } from '../domain/account.ts';
import { leftToRefund, planRefund, restoreParts, takeRefund } from '../domain/refund.ts';
import { PermanentJobError } from '../errors.ts';
import { ChargeNotApplied, type ApplyResult, type RefundCommand } from './commands.ts';
import { record, type ChargeRefunds, type LedgerTx, type Prepared } from './state.ts';

type Ready = Extract<Prepared, { kind: 'ok' }>;

/**
 * Gives back (part of) a charge: plans which parts come back (domain/refund.ts), restores them (domain/account.ts),
 * and records every part taken — revived or not — so later refunds of the charge know exactly what is left.
 */
export function applyRefund(st: LedgerTx, cmd: RefundCommand, prep: Ready, acct: AccountState): ApplyResult {
  const charge = chargeRefunds(st, cmd, prep);
  const left = leftToRefund(charge);
  const requested = cmd.amount ?? left;
  if (left === 0n) {
    throw new PermanentJobError('refund_exceeds_charge', `charge "${cmd.chargeEventId}" has nothing left to refund (refunded in full already)`);
  }
  if (requested > left) {
    throw new PermanentJobError('refund_exceeds_charge', `refund of ${requested} exceeds the ${left} left refundable of charge "${cmd.chargeEventId}"`);
  }
  const plan = planRefund(charge, requested, st.nowMs);
  const parts = restoreParts(plan);
  const balance = Number(acct.balance);
  const effect = restore(acct, parts, st.nowMs);
  takeRefund(charge, plan);
  const entry = record(st, acct, effect, {
    eventId: cmd.eventId,
    sourceType: charge.sourceType,
    sourceId: cmd.chargeEventId,
    usage: charge.model ? { model: charge.model } : null,
    description: cmd.reason,
    // Attributed to when the usage happened, so usage windows count charges net of their refunds.
    occurredAt: charge.occurredAt,
  });
  const restored = effect.entry?.amount ?? 0n;
  st.refunds.push({ eventId: cmd.eventId, charge: charge.charge, requested, restored, entry, parts: plan.map((p, k) => ({ ...p, restored: parts[k]!.restored! })) });
  return {
    outcome: 'applied',
    transaction_id: entry,
    amount: Number(restored),
    requested: Number(requested),
    balance_before: balance,
    balance_after: Number(acct.balance),
  };
}

/** The charge as this transaction tracks it across its refunds, built at the first one. */
function chargeRefunds(st: LedgerTx, cmd: RefundCommand, prep: Ready): ChargeRefunds {
  const known = st.chargeRefunds.get(cmd.chargeEventId);
  if (known) return known;
  const ref = prep.charge!;
  const built = 'index' in ref ? fromThisTransaction(st, ref.index, cmd.chargeEventId) : fromLedger(st, ref.entry.entry_id, ref.entry);
  st.chargeRefunds.set(cmd.chargeEventId, built);
  return built;
}

/** A charge applied earlier in this transaction: its draft says everything. */
function fromThisTransaction(st: LedgerTx, index: number, chargeEventId: string): ChargeRefunds {
  const entry = st.appliedCharges.get(index);
  if (!entry) {
    // Decided without charging anything (refused, free), or not applied at all (it failed, or waits itself).
    if (st.outcomes[index]?.ok) throw new PermanentJobError('refund_exceeds_charge', `charge "${chargeEventId}" charged nothing; there is nothing to refund`);
    throw new ChargeNotApplied(chargeEventId);
  }
  const usage = entry.meta!.usage as { model?: string } | null;
  return {
    charge: entry,
    sourceType: entry.meta!.sourceType,
    model: usage?.model ?? null,
    occurredAt: entry.meta!.occurredAt,
    burns: entry.draft.allocations.map((a) => ({ ...a })),
    debt: entry.draft.debt ?? null,
    refunded: { burn: new Map(), paid: new Map(), unpaid: 0n },
  };
}

/** A charge applied before: its allocations, debt and payments, less every part earlier refunds took. */
function fromLedger(st: LedgerTx, entryId: bigint, e: { source_type: string | null; usage: { model?: string } | null; occurred_at: Date | null }): ChargeRefunds {
  const parts = st.loaded.chargeParts.get(entryId);
  const batch = (id: string): BatchState => {
    const b = st.loaded.batches.get(BigInt(id));
    if (!b) throw new Error(`batch ${id} of charge entry ${entryId} not loaded`);
    return b;
  };
  const burns: Allocation[] = (parts?.allocations ?? []).map((a) => ({ batch: batch(a.batch_id), amount: BigInt(a.amount) }));
  const refunded = { burn: new Map<BatchState, bigint>(), paid: new Map<BatchState, bigint>(), unpaid: 0n };
  for (const p of parts?.refunded ?? []) {
    if (p.batch_id === null) refunded.unpaid += BigInt(p.amount);
    else {
      const map = p.paid ? refunded.paid : refunded.burn;
      const b = batch(p.batch_id);
      map.set(b, (map.get(b) ?? 0n) + BigInt(p.amount));
    }
  }
  return {
    charge: entryId,
    sourceType: e.source_type ?? 'unknown',
    model: e.usage?.model ?? null,
    occurredAt: e.occurred_at,
    burns,
    debt: st.loaded.debts.get(entryId) ?? null,
    refunded,
  };
}
