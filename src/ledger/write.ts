import type { Tx } from '../db/client.ts';
import type { AccountState, BatchState, EntryDraft } from '../domain/account.ts';
import type { PlannedPart } from '../domain/refund.ts';
import { updateAccounts } from './sql/accounts.ts';
import { allocateIds, insertBatches, updateBatches, type NewBatch } from './sql/batches.ts';
import { insertAllocations, insertEntries, type NewEntry, type NewAllocation } from './sql/entries.ts';
import { settleHolds, type HoldSettlement } from './sql/holds.ts';
import { insertOutbox, type OutboxRow } from './sql/outbox.ts';
import { insertProcessed, type ProcessedRow } from './sql/processed-events.ts';
import { insertRefunds } from './sql/refunds.ts';
import { addRewardCounts, type RewardCounterRow } from './sql/reward-counters.ts';
import { HOUR_MS, addUsage, type UsageDelta } from './sql/usage.ts';

/** What an entry records beyond the domain draft; null for entries no command asked for (expiry). */
export interface EntryMeta {
  eventId: string;
  sourceType: string;
  sourceId: string | null;
  usage: unknown;
  description: string | null;
  occurredAt: Date | null;
}

/** One entry to write. Results name it by object until ids exist (`transaction_id: PendingEntry`). */
export interface PendingEntry {
  draft: EntryDraft;
  acct: AccountState;
  meta: EntryMeta | null;
  id?: bigint;
}

export interface PendingRefund {
  eventId: string;
  charge: bigint | PendingEntry;
  requested: bigint;
  restored: bigint;
  entry: PendingEntry | null;
  parts: PlannedPart[];
}

export interface Changes {
  pending: PendingEntry[];
  accounts: Iterable<AccountState>;
  processedRows: ProcessedRow[];
  /** How many provisional batch ids were handed out (ids ≥ PROVISIONAL). */
  newBatchCount: bigint;
  /** Ids drawn earlier in the transaction (after the account locks); more are drawn here if they fall short. */
  ids?: { batchIds: bigint[]; entryIds: bigint[] };
  settlements: HoldSettlement[];
  refunds: PendingRefund[];
  rewardCounts: RewardCounterRow[];
}

export const PROVISIONAL = 1n << 62n; // ids of new batches while computing: above every real id, in creation order

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function entryIdOf(ref: bigint | PendingEntry): bigint {
  return typeof ref === 'bigint' ? ref : ref.id!;
}

/**
 * Writes every change of one ledger transaction with set-based statements, pipelined on its connection. Ids
 * drawn earlier (`c.ids`) are used first; a shortfall (expiries: more than one entry per command) is drawn here.
 */
export async function writeChanges(tx: Tx, c: Changes): Promise<void> {
  const { pending } = c;
  if (pending.length === 0 && c.processedRows.length === 0) return;
  const have = c.ids ?? { batchIds: [], entryIds: [] };
  const short = { batches: Math.max(0, Number(c.newBatchCount) - have.batchIds.length), entries: Math.max(0, pending.length - have.entryIds.length) };
  const more = short.batches + short.entries > 0 ? await allocateIds(tx, short.batches, short.entries) : { batchIds: [], entryIds: [] };
  // Ascending either way: ids drawn later in the transaction are larger.
  const batchIds = [...have.batchIds, ...more.batchIds].sort((a, b) => (a < b ? -1 : 1));
  const entryIds = [...have.entryIds, ...more.entryIds].sort((a, b) => (a < b ? -1 : 1));
  // Real ids keep the provisional order, so burn order among new batches is what the domain computed.
  const realBatchId = (b: BatchState) => (b.isNew ? batchIds[Number(b.id - PROVISIONAL)]! : b.id);
  pending.forEach((p, k) => {
    p.id = entryIds[k]!;
    if (p.draft.batch?.isNew) p.draft.batch.grantEntryId = p.id;
  });

  const entries: NewEntry[] = [];
  const allocations: NewAllocation[] = [];
  const newBatches: NewBatch[] = [];
  const touched = [];
  const outbox: OutboxRow[] = [];
  for (const p of pending) {
    const { draft, acct, meta } = p;
    const entryId = String(p.id);
    entries.push({
      entry_id: entryId,
      account_id: String(acct.id),
      user_id: acct.userId,
      asset: acct.asset,
      kind: draft.kind,
      amount: String(draft.amount),
      balance_before: String(draft.balanceBefore),
      balance_after: String(draft.balanceAfter),
      event_id: meta?.eventId ?? null,
      source_type: meta ? meta.sourceType : 'expiry',
      source_id: meta ? meta.sourceId : String(realBatchId(draft.batch!)),
      usage: meta?.usage ?? null,
      description: meta?.description ?? null,
      occurred_at: meta?.occurredAt?.toISOString() ?? null,
    });
    for (const a of draft.allocations) {
      allocations.push({ entry_id: entryId, batch_id: String(realBatchId(a.batch)), amount: String(a.amount) });
    }
    const b = draft.batch;
    if (b?.isNew) {
      newBatches.push({
        batch_id: String(realBatchId(b)),
        account_id: String(acct.id),
        amount: String(b.amount),
        remaining: String(b.remaining),
        expires_at: iso(b.expiresAt),
        expired: b.expired,
        source: b.source,
        source_id: b.sourceId,
        grant_entry_id: entryId,
      });
    }
    // Every entry announces the balance it left (balance_changed), one outbox row each.
    outbox.push({
      user_id: acct.userId,
      type: 'balance_changed',
      data: { asset: acct.asset, balance: Number(draft.balanceAfter), transaction_id: entryId },
    });
  }
  for (const acct of c.accounts) {
    for (const b of acct.touched) touched.push({ batch_id: String(b.id), remaining: String(b.remaining), expired: b.expired });
  }
  for (const row of c.processedRows) {
    const ref = row.result.transaction_id;
    if (ref && typeof ref === 'object') row.result.transaction_id = String((ref as PendingEntry).id);
  }
  const refundRows = c.refunds.map((r) => ({
    event_id: r.eventId,
    charge_entry_id: String(entryIdOf(r.charge)),
    requested: String(r.requested),
    restored: String(r.restored),
    entry_id: r.entry ? String(r.entry.id) : null,
    parts: r.parts.map((p) => ({ batch_id: p.batch ? String(realBatchId(p.batch)) : null, amount: String(p.amount), restored: p.restorable })),
  }));
  const changed = new Set(pending.map((p) => p.acct));
  const usage = usageDeltas(pending);
  await Promise.all([
    insertEntries(tx, entries),
    insertBatches(tx, newBatches),
    updateBatches(tx, touched),
    updateAccounts(
      tx,
      [...changed].map((a) => ({
        account_id: String(a.id),
        balance: String(a.balance),
        debt: String(a.debt),
        total_granted: String(a.totalGranted),
        total_consumed: String(a.totalConsumed),
        total_expired: String(a.totalExpired),
      })),
    ),
    insertProcessed(tx, c.processedRows),
    insertOutbox(tx, outbox),
    settleHolds(tx, c.settlements),
    addRewardCounts(tx, c.rewardCounts),
    addUsage(tx, usage),
    // Last: these reference the entries and batches above; the pipeline keeps statement order.
    insertAllocations(tx, allocations),
    insertRefunds(tx, refundRows),
  ]);
}

/** Charges and refunds of this transaction, summed per user, asset, UTC hour of occurred_at, source type and model. */
function usageDeltas(pending: PendingEntry[]): UsageDelta[] {
  const sums = new Map<string, { row: UsageDelta; amount: bigint; input: bigint; output: bigint }>();
  for (const p of pending) {
    const kind = p.draft.kind;
    if ((kind !== 'consume' && kind !== 'refund') || !p.meta?.occurredAt) continue;
    const usage = (p.meta.usage ?? {}) as { model?: string; input_tokens?: number; output_tokens?: number };
    const hour = new Date(Math.floor(p.meta.occurredAt.getTime() / HOUR_MS) * HOUR_MS).toISOString();
    const model = usage.model ?? '';
    const key = [p.acct.userId, p.acct.asset, hour, p.meta.sourceType, model].join('\u0000');
    let s = sums.get(key);
    if (!s) {
      s = {
        row: { user_id: p.acct.userId, asset: p.acct.asset, hour, source_type: p.meta.sourceType, model, amount: '0', count: 0, input_tokens: '0', output_tokens: '0' },
        amount: 0n,
        input: 0n,
        output: 0n,
      };
      sums.set(key, s);
    }
    s.amount -= p.draft.amount; // a consume is negative, a refund positive: the sum is what was charged net
    if (kind === 'consume') {
      s.row.count++;
      s.input += BigInt(usage.input_tokens ?? 0);
      s.output += BigInt(usage.output_tokens ?? 0);
    }
  }
  return [...sums.values()].map((s) => ({ ...s.row, amount: String(s.amount), input_tokens: String(s.input), output_tokens: String(s.output) }));
}
