import { consume, grant, type AccountState } from '../domain/account.ts';
import type { AdjustCommand, ApplyResult } from './commands.ts';
import { record, type EntryMeta, type LedgerTx } from './state.ts';
import { PROVISIONAL } from './write.ts';

const DAY_MS = 86_400_000;

/**
 * An operator's adjust, applied with the domain's own functions so every invariant a grant or a charge keeps holds:
 * positive — a new batch expiring after the asset's `default_expiry_days` (never, if null), paying debt first;
 * negative — burned in burn order like a post-paid charge, the shortfall becoming a traced debt. Either way the
 * entry is recorded as kind `adjust`, with the operator as its source and the reason as its description.
 * The result has the shape of a charge's: `{outcome, transaction_id, amount (signed), balance_before, balance_after}`.
 * Refunds cannot name an adjust (they look up charges): an adjust is undone by the opposite adjust.
 */
export function applyAdjust(st: LedgerTx, cmd: AdjustCommand, acct: AccountState): ApplyResult {
  const meta: EntryMeta = {
    eventId: cmd.eventId,
    sourceType: 'operator',
    sourceId: cmd.operatorId,
    usage: null,
    description: cmd.reason,
    occurredAt: null, // not usage: an adjust never counts in the usage dashboard
    kind: 'adjust',
  };
  const effect = cmd.amount > 0n ? grantEffect(st, acct, cmd.amount) : consume(acct, -cmd.amount, 'postpaid', 0n, st.nowMs);
  const entry = record(st, acct, effect, meta)!;
  return {
    outcome: 'applied',
    transaction_id: entry,
    amount: Number(cmd.amount),
    balance_before: Number(entry.draft.balanceBefore),
    balance_after: Number(entry.draft.balanceAfter),
  };
}

function grantEffect(st: LedgerTx, acct: AccountState, amount: bigint) {
  const days = Object.hasOwn(st.config.assets, acct.asset) ? st.config.assets[acct.asset]!.default_expiry_days : null;
  const batchId = PROVISIONAL + st.newBatches;
  st.newBatches++;
  return grant(acct, { amount, expiresAt: days === null ? null : st.nowMs + days * DAY_MS, source: 'adjust', sourceId: null, batchId, entryId: 0n }, st.nowMs);
}
