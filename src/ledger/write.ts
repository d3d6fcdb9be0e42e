import { balanceAlertData } from '../alerts/messages.ts';
import type { Tx } from '../db/client.ts';
import type { BatchState } from '../domain/account.ts';
import type { LedgerTx, PendingEntry } from './state.ts';
import { updateAccounts } from './sql/accounts.ts';
import { allocateIds, insertBatches, updateBatches, type BatchUpdate, type NewBatch } from './sql/batches.ts';
import { recordDeadLetters, type DeadLetter } from './sql/dead-letters.ts';
import { insertDebtPayments, writeDebts, type DebtWrite, type NewDebtPayment } from './sql/debts.ts';
import { insertAllocations, insertEntries, type NewAllocation, type NewEntry } from './sql/entries.ts';
import { settleHolds } from './sql/holds.ts';
import { insertOutbox, type OutboxRow } from './sql/outbox.ts';
import { insertProcessed } from './sql/processed-events.ts';
import { insertRefunds, type NewRefund } from './sql/refunds.ts';
import { addRewardCounts } from './sql/reward-counters.ts';
import { HOUR_MS, addUsage, type UsageDelta } from './sql/usage.ts';
import { insertFlowDeltas } from './sql/money-flow.ts';
import { flowDeltas, type FlowEntry } from '../money-flow/deltas.ts';

export const PROVISIONAL = 1n << 62n; // ids of new batches while computing: above every real id, in creation order

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * Phase 6. Writes every change of the transaction with set-based statements, pipelined on its connection. Ids
 * drawn by the load phase are used first; a shortfall (expiries: more than one entry per command) is drawn here.
 */
export async function write(tx: Tx, st: LedgerTx): Promise<void> {
  const { pending } = st;
  const deadLetters = dedupeByJob(st.deadLetters);
  if (pending.length === 0 && st.processedRows.length === 0) {
    if (deadLetters.length > 0) await recordDeadLetters(tx, deadLetters);
    return;
  }
  const realBatchId = await assignIds(tx, st);
  const rows = entryRows(st, realBatchId);
  // Pipelined; PostgreSQL runs them in this order, so rows come after the rows they reference.
  await Promise.all([
    insertEntries(tx, rows.entries),
    insertBatches(tx, rows.newBatches),
    updateBatches(tx, touchedBatches(st)),
    updateAccounts(tx, changedAccounts(st)),
    writeDebts(tx, rows.debts),
    insertProcessed(tx, st.processedRows),
    insertOutbox(tx, rows.outbox),
    settleHolds(tx, st.settlements),
    addRewardCounts(tx, [...st.rewardCounts.values()]),
    addUsage(tx, usageDeltas(pending)),
    insertAllocations(tx, rows.allocations),
    insertDebtPayments(tx, rows.payments),
    insertRefunds(tx, refundRows(st, realBatchId)),
    insertFlowDeltas(tx, flowDeltas(pending.map(flowEntry))),
    deadLetters.length > 0 ? recordDeadLetters(tx, deadLetters) : undefined,
  ]);
}

/** Gives every entry, new batch and new debt its real id; results that named an entry by object now name its id. */
async function assignIds(tx: Tx, st: LedgerTx): Promise<(b: BatchState) => bigint> {
  const have = st.loaded.ids;
  const short = { batches: Math.max(0, Number(st.newBatches) - have.batchIds.length), entries: Math.max(0, st.pending.length - have.entryIds.length) };
  const more = short.batches + short.entries > 0 ? await allocateIds(tx, short.batches, short.entries) : { batchIds: [], entryIds: [] };
  // Ascending either way: ids drawn later in the transaction are larger.
  const batchIds = [...have.batchIds, ...more.batchIds].sort((a, b) => (a < b ? -1 : 1));
  const entryIds = [...have.entryIds, ...more.entryIds].sort((a, b) => (a < b ? -1 : 1));
  st.pending.forEach((p, k) => {
    p.id = entryIds[k]!;
    if (p.draft.kind === 'grant' && p.draft.batch?.isNew) p.draft.batch.grantEntryId = p.id;
    if (p.draft.debt?.isNew) p.draft.debt.id = p.id;
  });
  for (const row of st.processedRows) {
    const ref = row.result.transaction_id;
    if (ref && typeof ref === 'object') row.result.transaction_id = String((ref as PendingEntry).id);
  }
  // Real ids keep the provisional order, so burn order among new batches is what the domain computed.
  return (b) => (b.isNew ? batchIds[Number(b.id - PROVISIONAL)]! : b.id);
}

function entryRows(st: LedgerTx, realBatchId: (b: BatchState) => bigint) {
  const entries: NewEntry[] = [];
  const allocations: NewAllocation[] = [];
  const newBatches: NewBatch[] = [];
  const payments: NewDebtPayment[] = [];
  const debts: DebtWrite[] = [];
  const outbox: OutboxRow[] = [];
  const createdAt = st.now.toISOString();
  for (const p of st.pending) {
    const { draft, acct, meta, id } = p;
    const entryId = String(id);
    entries.push({
      entry_id: entryId,
      account_id: String(acct.id),
      user_id: acct.userId,
      asset: acct.asset,
      kind: meta?.kind ?? draft.kind,
      amount: String(draft.amount),
      balance_before: String(draft.balanceBefore),
      balance_after: String(draft.balanceAfter),
      event_id: meta?.eventId ?? null,
      source_type: meta ? meta.sourceType : 'expiry',
      source_id: meta ? meta.sourceId : String(realBatchId(draft.batch!)),
      usage: meta?.usage ?? null,
      description: meta?.description ?? null,
      occurred_at: meta?.occurredAt?.toISOString() ?? null,
      created_at: createdAt,
    });
    for (const a of draft.allocations) allocations.push({ entry_id: entryId, batch_id: String(realBatchId(a.batch)), amount: String(a.amount) });
    for (const p of draft.payments) {
      payments.push({ charge_entry_id: String(p.debt.id), entry_id: entryId, batch_id: String(realBatchId(p.batch)), amount: String(p.amount) });
    }
    const b = draft.batch;
    if (draft.kind === 'grant' && b?.isNew) {
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
    const d = draft.debt;
    if (d?.isNew) debts.push({ charge_entry_id: entryId, account_id: String(acct.id), amount: String(d.amount), remaining: String(d.remaining), refunded: String(d.refunded) });
    // Every entry announces the balance it left (balance_changed), one outbox row each.
    outbox.push({ user_id: acct.userId, type: 'balance_changed', data: { asset: acct.asset, balance: Number(draft.balanceAfter), transaction_id: entryId } });
    // The alerts this entry crossed (alerts.ts) follow the balance_changed they are about.
    for (const rule of st.alerts.get(p) ?? []) outbox.push({ user_id: acct.userId, type: 'alert', data: { ...balanceAlertData(rule, acct.asset, draft.balanceAfter, entryId) } });
  }
  for (const acct of st.accounts.values()) {
    for (const d of acct.touchedDebts) {
      debts.push({ charge_entry_id: String(d.id), account_id: String(acct.id), amount: String(d.amount), remaining: String(d.remaining), refunded: String(d.refunded) });
    }
  }
  return { entries, allocations, newBatches, payments, debts, outbox };
}

function touchedBatches(st: LedgerTx): BatchUpdate[] {
  const rows: BatchUpdate[] = [];
  for (const acct of st.accounts.values()) {
    for (const b of acct.touched) rows.push({ batch_id: String(b.id), remaining: String(b.remaining), expired: b.expired });
  }
  return rows;
}

function changedAccounts(st: LedgerTx) {
  return [...new Set(st.pending.map((p) => p.acct))].map((a) => ({
    account_id: String(a.id),
    balance: String(a.balance),
    debt: String(a.debt),
    total_granted: String(a.totalGranted),
    total_consumed: String(a.totalConsumed),
    total_expired: String(a.totalExpired),
    alerts_fired: st.alertsFired.get(a) ?? [],
  }));
}

function refundRows(st: LedgerTx, realBatchId: (b: BatchState) => bigint): NewRefund[] {
  return st.refunds.map((r) => ({
    event_id: r.eventId,
    charge_entry_id: String(typeof r.charge === 'bigint' ? r.charge : r.charge.id!),
    requested: String(r.requested),
    restored: String(r.restored),
    entry_id: r.entry ? String(r.entry.id) : null,
    parts: r.parts.map(({ source, amount, restored }) =>
      source.kind === 'unpaid'
        ? { batch_id: null, amount: String(amount), restored }
        : { batch_id: String(realBatchId(source.batch)), amount: String(amount), restored, ...(source.kind === 'paid' ? { paid: true as const } : {}) },
    ),
  }));
}

/** Charges and refunds of this transaction, summed per user, asset, UTC hour of occurred_at, source type and model. */
function usageDeltas(pending: PendingEntry[]): UsageDelta[] {
  const sums = new Map<string, { row: UsageDelta; amount: bigint; input: bigint; output: bigint }>();
  for (const p of pending) {
    const kind = p.draft.kind;
    if ((kind !== 'consume' && kind !== 'refund') || !p.meta?.occurredAt) continue;
    const usage = (p.meta.usage ?? {}) as { model?: string; input_tokens?: number; output_tokens?: number };
    const hourMs = Math.floor(p.meta.occurredAt.getTime() / HOUR_MS) * HOUR_MS;
    const model = usage.model ?? '';
    // The hour as a number in the key; its ISO text is written once per group (toISOString per entry showed in profiles).
    const key = `${p.acct.userId}\u0000${p.acct.asset}\u0000${hourMs}\u0000${p.meta.sourceType}\u0000${model}`;
    let s = sums.get(key);
    if (!s) {
      const hour = new Date(hourMs).toISOString();
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
  return [...sums.values()].map(({ row, amount, input, output }) => ({
    user_id: row.user_id,
    asset: row.asset,
    hour: row.hour,
    source_type: row.source_type,
    model: row.model,
    amount: String(amount),
    count: row.count,
    input_tokens: String(input),
    output_tokens: String(output),
  }));
}

/**
 * An entry as the money-flow rollup reads it. Written out, not spread from the draft: a spread copy of an object
 * holding bigints and arrays cost ~4 µs an entry (V8 builds it property by property), 0.02 µs written out.
 */
function flowEntry(p: PendingEntry): FlowEntry {
  const d = p.draft;
  return { account: p.acct, asset: p.acct.asset, kind: d.kind, amount: d.amount, balanceBefore: d.balanceBefore, balanceAfter: d.balanceAfter };
}

function dedupeByJob(rows: DeadLetter[]): DeadLetter[] {
  return [...new Map(rows.map((r) => [`${r.queue}\u0000${r.job_id}`, r])).values()];
}
