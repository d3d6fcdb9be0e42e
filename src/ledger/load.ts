import type { Tx } from '../db/client.ts';
import type { AccountState, BatchState, DebtState } from '../domain/account.ts';
import type { RewardCommand } from './commands.ts';
import { counterKey, type LedgerTx } from './state.ts';
import { allocateIds, loadOpenBatches, type BatchRow } from './sql/batches.ts';
import { loadOpenDebts, type DebtRow } from './sql/debts.ts';
import { heldByAccount, loadHolds } from './sql/holds.ts';
import { loadBatchesById, loadChargeParts, type ChargePartsRow } from './sql/refunds.ts';
import { loadRewardCounters } from './sql/reward-counters.ts';

/**
 * Phase 4. Reads, under the locks, what the commands to apply need: the accounts' open batches and debts, held
 * amounts, the holds settled, the charges refunded (parts, debt, payments, earlier refunds), reward counters, and
 * ids for the rows to write — pipelined in one round trip. Batches a refund gives back to that are closed (burned
 * to zero, or expired) take a second, only then.
 */
export async function load(tx: Tx, st: LedgerTx): Promise<void> {
  const byId = new Map([...st.accounts.values()].map((a) => [a.id, a]));
  if (byId.size === 0) return;
  const accountIds = [...byId.keys()];
  const indebted = [...byId.values()].filter((a) => a.debt > 0n).map((a) => a.id);
  const want = wanted(st);
  const [open, debts, held, holds, parts, counters, ids] = await Promise.all([
    loadOpenBatches(tx, accountIds),
    indebted.length > 0 ? loadOpenDebts(tx, indebted) : ([] as DebtRow[]),
    heldByAccount(tx, accountIds, st.now),
    want.holdIds.length > 0 ? loadHolds(tx, want.holdIds) : [],
    want.chargeEntryIds.length > 0 ? loadChargeParts(tx, want.chargeEntryIds) : ([] as ChargePartsRow[]),
    loadRewardCounters(tx, want.counterKeys),
    // Drawn after the locks, so an account's entries number in commit order.
    allocateIds(tx, want.batches, want.entries),
  ]);
  const l = st.loaded;
  l.ids = ids;
  l.held = held;
  for (const h of holds) l.holds.set(h.hold_id, h);
  for (const c of counters) l.counters.set(counterKey(c.user_id, c.event_type, c.day), c.granted);
  for (const b of open) {
    const batch = toBatch(b, false);
    byId.get(b.account_id)!.batches.push(batch);
    l.batches.set(batch.id, batch);
  }
  for (const d of debts) {
    const debt = toDebt(d.charge_entry_id, d);
    byId.get(d.account_id)!.debts.push(debt);
    l.debts.set(debt.id, debt);
  }
  for (const a of byId.values()) checkDebts(a);
  for (const p of parts) l.chargeParts.set(BigInt(p.entry_id), p);
  await loadClosedBatches(tx, st);
  for (const p of parts) attachDebt(st, p);
}

/** What the commands to apply will look up and write. */
function wanted(st: LedgerTx) {
  const holdIds: string[] = [];
  const chargeEntryIds: bigint[] = [];
  const counterKeys: { user_id: string; event_type: string; day: string }[] = [];
  let batches = 0;
  for (const i of st.live) {
    const cmd = st.cmds[i]!;
    const p = st.prepared[i]!;
    if (cmd.op === 'charge' && cmd.holdId) holdIds.push(cmd.holdId);
    if (cmd.op === 'grant' || cmd.op === 'reward' || (cmd.op === 'adjust' && cmd.amount > 0n)) batches++;
    if (p.kind === 'ok' && p.charge && 'entry' in p.charge) chargeEntryIds.push(p.charge.entry.entry_id);
    if (p.kind === 'ok' && p.reward) counterKeys.push({ user_id: p.target.userId, event_type: (cmd as RewardCommand).eventType, day: p.reward.day });
  }
  // One entry per command, one batch per grant or reward; the write phase draws more if expiries need them.
  return { holdIds, chargeEntryIds: [...new Set(chargeEntryIds)], counterKeys, batches, entries: st.live.length };
}

async function loadClosedBatches(tx: Tx, st: LedgerTx): Promise<void> {
  const need = new Set<bigint>();
  for (const p of st.loaded.chargeParts.values()) {
    for (const a of [...p.allocations, ...p.payments]) {
      const id = BigInt(a.batch_id);
      if (!st.loaded.batches.has(id)) need.add(id);
    }
  }
  if (need.size === 0) return;
  for (const b of await loadBatchesById(tx, [...need])) st.loaded.batches.set(b.batch_id, toBatch(b, b.expired));
}

/** The refunded charge's debt — the open one the account holds, or a paid-off one — with who paid it. */
function attachDebt(st: LedgerTx, p: ChargePartsRow): void {
  if (!p.debt) return;
  const id = BigInt(p.entry_id);
  let debt = st.loaded.debts.get(id);
  if (!debt) {
    debt = toDebt(id, p.debt);
    st.loaded.debts.set(id, debt);
  }
  debt.paidBy = [];
  for (const pay of p.payments) {
    const batch = st.loaded.batches.get(BigInt(pay.batch_id))!;
    const same = debt.paidBy.find((x) => x.batch === batch);
    if (same) same.amount += BigInt(pay.amount);
    else debt.paidBy.push({ batch, amount: BigInt(pay.amount) });
  }
}

/** The account's debt is exactly what its open debts still owe; anything else is corruption, not a state to act on. */
function checkDebts(a: AccountState): void {
  const owed = a.debts.reduce((s, d) => s + d.remaining, 0n);
  if (owed !== a.debt) throw new Error(`account ${a.id}: debt ${a.debt} but its open debts owe ${owed} (run reconcile)`);
}

function toBatch(b: BatchRow, expired: boolean): BatchState {
  return {
    id: b.batch_id,
    amount: b.amount,
    remaining: b.remaining,
    expiresAt: b.expires_at ? b.expires_at.getTime() : null,
    expired,
    source: b.source,
    sourceId: b.source_id,
    grantEntryId: b.grant_entry_id,
    isNew: false,
  };
}

function toDebt(id: bigint, d: { amount: bigint | string; remaining: bigint | string; refunded: bigint | string }): DebtState {
  return { id, amount: BigInt(d.amount), remaining: BigInt(d.remaining), refunded: BigInt(d.refunded), paidBy: [], isNew: false };
}
