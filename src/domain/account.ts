/**
 * The ledger's rules as plain functions over an in-memory account: FIFO burn, debt, lazy expiry, grants.
 * No I/O — the SQL layer loads an `AccountState`, runs these in event order, and writes what changed.
 *
 * Invariants kept by every function (and by CHECK constraints in the database):
 *   balance = Σ remaining(unexpired batches) − debt
 *   balance = total_granted − total_consumed − total_expired
 *   debt > 0 ⇒ no unexpired batch has anything remaining
 */
export interface BatchState {
  id: bigint;
  amount: bigint;
  remaining: bigint;
  /** Epoch milliseconds, or null for never. */
  expiresAt: number | null;
  expired: boolean;
  source: string;
  sourceId: string | null;
  grantEntryId: bigint;
  /** Created by this transaction (to insert) rather than loaded (to update). */
  isNew: boolean;
}

export interface AccountState {
  id: bigint;
  userId: string;
  asset: string;
  balance: bigint;
  debt: bigint;
  totalGranted: bigint;
  totalConsumed: bigint;
  totalExpired: bigint;
  /** Unexpired batches with something remaining, in burn order. */
  batches: BatchState[];
  /** Loaded batches whose remaining or expired flag changed. */
  touched: Set<BatchState>;
}

export interface Allocation {
  batch: BatchState;
  amount: bigint;
}

export interface EntryDraft {
  kind: 'grant' | 'consume' | 'expire' | 'refund';
  /** Signed: balanceAfter = balanceBefore + amount. */
  amount: bigint;
  balanceBefore: bigint;
  balanceAfter: bigint;
  allocations: Allocation[];
  /** The batch a grant created; the batch an expiry closed. */
  batch?: BatchState;
}

/** Soonest expiry first, never-expiring last, then creation order. */
export function burnOrder(a: BatchState, b: BatchState): number {
  if (a.expiresAt !== b.expiresAt) {
    if (a.expiresAt === null) return 1;
    if (b.expiresAt === null) return -1;
    return a.expiresAt - b.expiresAt;
  }
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function isLapsed(batch: BatchState, nowMs: number): boolean {
  return batch.expiresAt !== null && batch.expiresAt <= nowMs;
}

function markTouched(acct: AccountState, batch: BatchState): void {
  if (!batch.isNew) acct.touched.add(batch);
}

/** Closes every batch past its expiry: one `expire` entry per batch, for what it still held. */
export function expireLapsed(acct: AccountState, nowMs: number): EntryDraft[] {
  const entries: EntryDraft[] = [];
  const keep: BatchState[] = [];
  for (const batch of acct.batches) {
    if (!isLapsed(batch, nowMs) || batch.remaining === 0n) {
      keep.push(batch);
      continue;
    }
    const before = acct.balance;
    acct.balance -= batch.remaining;
    acct.totalExpired += batch.remaining;
    batch.expired = true;
    markTouched(acct, batch);
    entries.push({ kind: 'expire', amount: -batch.remaining, balanceBefore: before, balanceAfter: acct.balance, allocations: [], batch });
  }
  acct.batches = keep;
  return entries;
}

export interface GrantInput {
  amount: bigint;
  expiresAt: number | null;
  source: string;
  sourceId: string | null;
  batchId: bigint;
  entryId: bigint;
}

/** Adds a batch; whatever debt there is gets paid from it first (the entry still shows the whole grant). */
export function grant(acct: AccountState, input: GrantInput): EntryDraft {
  const paid = acct.debt < input.amount ? acct.debt : input.amount;
  acct.debt -= paid;
  const batch: BatchState = {
    id: input.batchId,
    amount: input.amount,
    remaining: input.amount - paid,
    expiresAt: input.expiresAt,
    expired: false,
    source: input.source,
    sourceId: input.sourceId,
    grantEntryId: input.entryId,
    isNew: true,
  };
  if (batch.remaining > 0n) {
    acct.batches.push(batch);
    acct.batches.sort(burnOrder);
  }
  const before = acct.balance;
  acct.balance += input.amount;
  acct.totalGranted += input.amount;
  return { kind: 'grant', amount: input.amount, balanceBefore: before, balanceAfter: acct.balance, allocations: [], batch };
}

export type Policy = 'postpaid' | 'guarded';

/**
 * Burns `amount` from the batches in burn order. `guarded` applies only when the available balance
 * (balance − held) covers it and returns null otherwise; `postpaid` always applies and turns what the
 * batches cannot cover into debt.
 */
export function consume(acct: AccountState, amount: bigint, policy: Policy, held = 0n): EntryDraft | null {
  if (policy === 'guarded' && acct.balance - held < amount) return null;
  const allocations: Allocation[] = [];
  let left = amount;
  let burnedOut = 0;
  for (const batch of acct.batches) {
    if (left === 0n) break;
    const take = batch.remaining < left ? batch.remaining : left;
    batch.remaining -= take;
    left -= take;
    allocations.push({ batch, amount: take });
    markTouched(acct, batch);
    if (batch.remaining === 0n) burnedOut++;
  }
  acct.batches.splice(0, burnedOut);
  acct.debt += left;
  const before = acct.balance;
  acct.balance -= amount;
  acct.totalConsumed += amount;
  return { kind: 'consume', amount: -amount, balanceBefore: before, balanceAfter: acct.balance, allocations };
}

/** Σ remaining of the batches that still count at `nowMs` − debt: the balance exact at read time. */
export function balanceAt(acct: AccountState, nowMs: number): bigint {
  let sum = 0n;
  for (const b of acct.batches) if (!isLapsed(b, nowMs)) sum += b.remaining;
  return sum - acct.debt;
}

/** A part of a charge being given back: to the batch it burned, or (batch null) the part it took as debt. */
export interface RestorePart {
  batch: BatchState | null;
  amount: bigint;
}

/**
 * Gives `parts` back to the account (a refund). Debt is paid first, as with a grant, so that "debt > 0 ⇒
 * nothing left to burn" keeps holding; what remains goes back into the batches it came from. A debt part
 * whose debt has since been paid by a grant cannot go back where it came from: it becomes a new
 * never-expiring batch (`newBatch`). The totals move back too: `total_consumed` goes down, nothing is granted.
 */
export function restore(acct: AccountState, parts: RestorePart[], newBatch: { id: bigint; source: string; sourceId: string | null }): EntryDraft {
  let total = 0n;
  for (const p of parts) total += p.amount;
  const toDebt = acct.debt < total ? acct.debt : total;
  acct.debt -= toDebt;
  let absorbed = toDebt;
  let extra = 0n;
  const allocations: Allocation[] = [];
  for (const part of parts) {
    const taken = absorbed < part.amount ? absorbed : part.amount;
    absorbed -= taken;
    const amount = part.amount - taken;
    if (amount === 0n) continue;
    if (part.batch === null) {
      extra += amount;
      continue;
    }
    const batch = part.batch;
    if (batch.remaining === 0n && !acct.batches.includes(batch)) acct.batches.push(batch);
    batch.remaining += amount;
    markTouched(acct, batch);
    allocations.push({ batch, amount });
  }
  let created: BatchState | undefined;
  if (extra > 0n) {
    created = {
      id: newBatch.id,
      amount: extra,
      remaining: extra,
      expiresAt: null,
      expired: false,
      source: newBatch.source,
      sourceId: newBatch.sourceId,
      grantEntryId: 0n,
      isNew: true,
    };
    acct.batches.push(created);
  }
  acct.batches.sort(burnOrder);
  const before = acct.balance;
  acct.balance += total;
  acct.totalConsumed -= total;
  return { kind: 'refund', amount: total, balanceBefore: before, balanceAfter: acct.balance, allocations, batch: created };
}
