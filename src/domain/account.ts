/**
 * The ledger's rules as plain functions over an in-memory account: FIFO burn, traced debt, exact expiry, grants,
 * refunds. No I/O — the SQL layer loads an `AccountState`, runs these in event order, and writes what changed.
 *
 * Time: every function takes the transaction's one clock (`nowMs`). A batch is lapsed at `nowMs` when its
 * `expiresAt` ≤ `nowMs`; each function first closes what lapsed (`expireLapsed`), so no batch is ever burned,
 * counted in a balance, paid into, or used to pay debt at or after its expiry — whatever else the transaction holds.
 *
 * Invariants kept by every function (and by CHECK constraints and reconcile in the database):
 *   balance = Σ remaining(unexpired batches) − debt
 *   balance = total_granted − total_consumed − total_expired
 *   debt = Σ remaining(open debts);  debt > 0 ⇒ no unexpired batch has anything remaining
 *   every balance, total and amount stays within ±(2^53 − 1) (else LimitError, and nothing changed)
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

/** The part of one charge that went into debt: what is still unpaid, and which batches paid the rest. */
export interface DebtState {
  /** The charge's entry id (0n until a debt made in this transaction is written). */
  id: bigint;
  amount: bigint;
  remaining: bigint;
  /** Unpaid debt given back by refunds of the charge. */
  refunded: bigint;
  /** Payments, where known: loaded for charges being refunded, plus this transaction's. */
  paidBy: Allocation[];
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
  /** Open debts (remaining > 0), oldest first: the order payments take them in. */
  debts: DebtState[];
  /** Loaded batches whose remaining or expired flag changed. */
  touched: Set<BatchState>;
  /** Loaded debts whose remaining or refunded changed. */
  touchedDebts: Set<DebtState>;
}

export interface Allocation {
  batch: BatchState;
  amount: bigint;
}

/** A debt paid (partly) by a batch, within one entry. */
export interface Payment {
  debt: DebtState;
  batch: BatchState;
  amount: bigint;
}

export interface EntryDraft {
  kind: 'grant' | 'consume' | 'expire' | 'refund';
  /** Signed: balanceAfter = balanceBefore + amount. */
  amount: bigint;
  balanceBefore: bigint;
  balanceAfter: bigint;
  /** consume: the batches burned; refund: the batches given back to. */
  allocations: Allocation[];
  /** Debts paid off from batches by this entry (a grant's batch, or batches a refund refilled). */
  payments: Payment[];
  /** The batch a grant created; the batch an expiry closed. */
  batch?: BatchState;
  /** The debt a consume left. */
  debt?: DebtState;
}

/** What one operation did: its entries in order (expiries it had to close first included), and its own entry. */
export interface Effect {
  entries: EntryDraft[];
  /** null: nothing was applied (a guarded charge refused, a refund of which nothing could come back). */
  entry: EntryDraft | null;
}

/** The largest amount, balance or total the ledger keeps: JSON numbers are exact only up to here. */
export const MAX_AMOUNT = 2n ** 53n - 1n;

/** An operation would take a balance, total or amount past ±MAX_AMOUNT. Thrown before anything changed. */
export class LimitError extends Error {
  constructor(what: string) {
    super(`${what} would exceed 2^53 − 1`);
    this.name = 'LimitError';
  }
}

function within(value: bigint, what: string): void {
  // Stryker: equivalent — the lower bound (`< −MAX` → false or ≤) is never reached: amounts are ≥ 1 and the totals
  // and debt checked here are ≥ 0 (total_consumed ≥ debt); it is kept so the bound reads as documented, ±.
  if (value > MAX_AMOUNT || value < -MAX_AMOUNT) throw new LimitError(what);
}

/** Soonest expiry first, never-expiring last, then creation order. */
export function burnOrder(a: BatchState, b: BatchState): number {
  if (a.expiresAt !== b.expiresAt) {
    if (a.expiresAt === null) return 1;
    if (b.expiresAt === null) return -1;
    return a.expiresAt - b.expiresAt;
  }
  // Stryker: equivalent — batch ids are unique, so equal ids never meet (`<=` first, `>=`/true second); and V8's
  // sort only asks whether compare < 0, so answering 0 instead of 1 for a later id (false, `<=` second) sorts the same.
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Past its expiry at `nowMs`: the expiry instant itself already belongs to "expired". */
export function isLapsed(batch: BatchState, nowMs: number): boolean {
  return batch.expiresAt !== null && batch.expiresAt <= nowMs;
}

/** Can hold points at `nowMs`: neither marked expired nor past its expiry. */
export function isLive(batch: BatchState, nowMs: number): boolean {
  return !batch.expired && !isLapsed(batch, nowMs);
}

function markTouched(acct: AccountState, batch: BatchState): void {
  if (!batch.isNew) acct.touched.add(batch);
}

function markDebt(acct: AccountState, debt: DebtState): void {
  if (!debt.isNew) acct.touchedDebts.add(debt);
}

function draft(acct: AccountState, kind: EntryDraft['kind'], amount: bigint): EntryDraft {
  const before = acct.balance;
  acct.balance += amount;
  return { kind, amount, balanceBefore: before, balanceAfter: acct.balance, allocations: [], payments: [] };
}

/** Closes every batch past its expiry: one `expire` entry per batch, for what it still held. */
export function expireLapsed(acct: AccountState, nowMs: number): EntryDraft[] {
  const entries: EntryDraft[] = [];
  const keep: BatchState[] = [];
  for (const batch of acct.batches) {
    // Stryker: equivalent — `remaining === 0n` → false: the open list never holds an empty batch (see AccountState).
    if (!isLapsed(batch, nowMs) || batch.remaining === 0n) {
      keep.push(batch);
      continue;
    }
    entries.push(expireBatch(acct, batch));
  }
  acct.batches = keep;
  return entries;
}

function expireBatch(acct: AccountState, batch: BatchState): EntryDraft {
  acct.totalExpired += batch.remaining;
  batch.expired = true;
  markTouched(acct, batch);
  const entry = draft(acct, 'expire', -batch.remaining);
  entry.batch = batch;
  return entry;
}

/**
 * Pays open debts, oldest first, from the live batches in burn order (when there is debt, only batches this
 * operation just filled hold anything). Each payment is recorded on the entry and on the debt.
 */
function payDebts(acct: AccountState, entry: EntryDraft): void {
  let b = 0;
  while (acct.debt > 0n && b < acct.batches.length) {
    const batch = acct.batches[b]!;
    const debt = acct.debts[0];
    if (!debt) throw new Error(`account ${acct.id}: debt ${acct.debt} has no open debt to pay`);
    const pay = batch.remaining < debt.remaining ? batch.remaining : debt.remaining; // Stryker: `<=` equivalent (a tie picks equal values)
    batch.remaining -= pay;
    debt.remaining -= pay;
    acct.debt -= pay;
    markTouched(acct, batch);
    markDebt(acct, debt);
    addTo(entry.payments, debt, batch, pay);
    const paid = debt.paidBy.find((p) => p.batch === batch);
    if (paid) paid.amount += pay;
    else debt.paidBy.push({ batch, amount: pay });
    if (debt.remaining === 0n) acct.debts.shift();
    if (batch.remaining === 0n) b++;
  }
  // Stryker: equivalent — filtering when no batch emptied (`b >= 0`, true) keeps the same batches.
  if (b > 0) acct.batches = acct.batches.filter((x) => x.remaining > 0n);
}

function addTo(payments: Payment[], debt: DebtState, batch: BatchState, amount: bigint): void {
  // Stryker: equivalent — within one payDebts call each step finishes its debt or its batch, so a (debt, batch) pair
  // never repeats in one entry: never finding `same` (find → undefined, false; `-=` uncovered) changes nothing.
  const same = payments.find((p) => p.debt === debt && p.batch === batch);
  if (same) same.amount += amount;
  else payments.push({ debt, batch, amount });
}

export interface GrantInput {
  amount: bigint;
  expiresAt: number | null;
  source: string;
  sourceId: string | null;
  batchId: bigint;
  entryId: bigint;
}

/**
 * Adds a batch; whatever debt there is gets paid from it first (the entry still shows the whole grant). A batch
 * whose expiry is not after `nowMs` is recorded and expires at once: it adds nothing spendable and pays no debt.
 */
export function grant(acct: AccountState, input: GrantInput, nowMs: number): Effect {
  // Limits first: a refused operation changes nothing (balance ≤ total_granted, so that one bounds it too).
  within(input.amount, 'amount');
  within(acct.totalGranted + input.amount, 'total_granted');
  const entries = expireLapsed(acct, nowMs);
  const batch: BatchState = {
    id: input.batchId,
    amount: input.amount,
    remaining: input.amount,
    expiresAt: input.expiresAt,
    expired: false,
    source: input.source,
    sourceId: input.sourceId,
    grantEntryId: input.entryId,
    isNew: true,
  };
  acct.totalGranted += input.amount;
  const entry = draft(acct, 'grant', input.amount);
  entry.batch = batch;
  entries.push(entry);
  if (isLapsed(batch, nowMs)) {
    entries.push(expireBatch(acct, batch));
    return { entries, entry };
  }
  acct.batches.push(batch);
  acct.batches.sort(burnOrder);
  payDebts(acct, entry);
  return { entries, entry };
}

export type Policy = 'postpaid' | 'guarded';

/**
 * Burns `amount` from the live batches in burn order. `guarded` applies only when the available balance
 * (balance − held) covers it (entry null otherwise); `postpaid` always applies and turns what the batches cannot
 * cover into a debt of this charge.
 */
export function consume(acct: AccountState, amount: bigint, policy: Policy, held: bigint, nowMs: number): Effect {
  // Limits first, on what the batches will hold once the lapsed ones are closed: a refused charge changes nothing.
  const live = liveRemaining(acct, nowMs);
  // Stryker: equivalent — `>=` or true: when amount ≤ live the "shortfall" is ≤ 0, which creates no debt below and
  // cannot make the debt check throw.
  const shortfall = amount > live ? amount - live : 0n;
  within(amount, 'amount');
  // Only a charge that will apply is checked: a refused guarded charge is refused, not a LimitError.
  // Stryker: equivalent — `>` or false: an affordable guarded charge never passes a limit (amount ≤ balance ≤
  // total_granted − total_consumed), so skipping its check changes nothing.
  if (policy === 'postpaid' || live - acct.debt - held >= amount) {
    within(acct.totalConsumed + amount, 'total_consumed');
    // Stryker: equivalent — `debt - shortfall`, and the "debt" message: debt + shortfall ≤ total_consumed + amount
    // (total_consumed ≥ debt always), so the line above throws first; this one states the bound on debt.
    within(acct.debt + shortfall, 'debt');
  }
  const entries = expireLapsed(acct, nowMs);
  if (policy === 'guarded' && acct.balance - held < amount) return { entries, entry: null };

  const allocations: Allocation[] = [];
  let left = amount;
  let burnedOut = 0;
  for (const batch of acct.batches) {
    if (left === 0n) break;
    const take = batch.remaining < left ? batch.remaining : left; // Stryker: `<=` equivalent (a tie picks equal values)
    batch.remaining -= take;
    left -= take;
    allocations.push({ batch, amount: take });
    markTouched(acct, batch);
    if (batch.remaining === 0n) burnedOut++;
  }
  acct.batches.splice(0, burnedOut);
  acct.totalConsumed += amount;
  const entry = draft(acct, 'consume', -amount);
  entry.allocations = allocations;
  if (shortfall > 0n) {
    const debt: DebtState = { id: 0n, amount: shortfall, remaining: shortfall, refunded: 0n, paidBy: [], isNew: true };
    acct.debts.push(debt);
    acct.debt += shortfall;
    entry.debt = debt;
  }
  entries.push(entry);
  return { entries, entry };
}

function liveRemaining(acct: AccountState, nowMs: number): bigint {
  let sum = 0n;
  for (const b of acct.batches) if (!isLapsed(b, nowMs)) sum += b.remaining;
  return sum;
}

/** Σ remaining of the batches that still count at `nowMs` − debt: the balance exact at read time. */
export function balanceAt(acct: AccountState, nowMs: number): bigint {
  return liveRemaining(acct, nowMs) - acct.debt;
}

/**
 * A part of a charge being given back: to a batch (one it burned, or one that paid its debt), or — debt set — the
 * part of its debt still unpaid. `restored` is filled in by `restore`.
 */
export type RestorePart = ({ batch: BatchState; debt?: undefined } | { debt: DebtState; batch?: undefined }) & {
  amount: bigint;
  restored?: boolean;
};

/**
 * Gives `parts` back to the account (a refund). An unpaid-debt part lowers that debt. A batch part goes back
 * into its batch, with the batch's expiry — unless the batch is no longer live at `nowMs`: then it is not
 * revived (`restored` false) and nothing comes back for it. If the account is in debt, what came back pays it
 * first, as a grant would. `total_consumed` goes down by what came back; nothing is granted.
 */
export function restore(acct: AccountState, parts: RestorePart[], nowMs: number): Effect {
  const entries = expireLapsed(acct, nowMs);
  let total = 0n;
  const allocations: Allocation[] = [];
  for (const part of parts) {
    if (part.debt) {
      const debt = part.debt;
      if (part.amount > debt.remaining) throw new Error(`refund of ${part.amount} exceeds debt ${debt.id}'s unpaid ${debt.remaining}`);
      debt.remaining -= part.amount;
      debt.refunded += part.amount;
      acct.debt -= part.amount;
      markDebt(acct, debt);
      if (debt.remaining === 0n) acct.debts = acct.debts.filter((d) => d !== debt);
    } else {
      const batch = part.batch!;
      if (!isLive(batch, nowMs)) {
        part.restored = false;
        continue;
      }
      if (batch.remaining + part.amount > batch.amount) throw new Error(`batch ${batch.id} would hold more than it was granted`);
      if (!acct.batches.includes(batch)) acct.batches.push(batch);
      batch.remaining += part.amount;
      markTouched(acct, batch);
      const same = allocations.find((a) => a.batch === batch);
      if (same) same.amount += part.amount;
      else allocations.push({ batch, amount: part.amount });
    }
    part.restored = true;
    total += part.amount;
  }
  if (total === 0n) return { entries, entry: null };
  acct.batches.sort(burnOrder);
  acct.totalConsumed -= total;
  const entry = draft(acct, 'refund', total);
  entry.allocations = allocations;
  payDebts(acct, entry);
  entries.push(entry);
  return { entries, entry };
}
