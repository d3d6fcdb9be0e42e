/**
 * What one ledger transaction adds to the money-flow rollup (migrations/041_money_flow.sql): per asset, the
 * amounts granted, consumed, refunded and expired, and the change of the net balance and of the debt. Pure.
 */
export interface FlowEntry {
  /** Any value identifying the account (entries of one account share it). */
  account: object;
  asset: string;
  kind: 'grant' | 'consume' | 'expire' | 'refund';
  /** Signed, as the ledger records it. */
  amount: bigint;
  balanceBefore: bigint;
  balanceAfter: bigint;
}

export interface FlowDelta {
  asset: string;
  granted: string;
  consumed: string;
  refunded: string;
  expired: string;
  balance: string;
  debt: string;
}

interface Sums {
  granted: bigint;
  consumed: bigint;
  refunded: bigint;
  expired: bigint;
  balance: bigint;
  debt: bigint;
}

/**
 * Sums a transaction's entries per asset. Debt follows from balances: between transactions an account's debt is
 * max(0, −balance) (the `debt_means_empty` constraint), so its change is read off the account's first and last
 * entry of the transaction.
 */
export function flowDeltas(entries: readonly FlowEntry[]): FlowDelta[] {
  const perAsset = new Map<string, Sums>();
  const span = new Map<object, { asset: string; before: bigint; after: bigint }>();
  for (const e of entries) {
    let s = perAsset.get(e.asset);
    if (!s) perAsset.set(e.asset, (s = { granted: 0n, consumed: 0n, refunded: 0n, expired: 0n, balance: 0n, debt: 0n }));
    if (e.kind === 'grant') s.granted += e.amount;
    else if (e.kind === 'consume') s.consumed -= e.amount;
    else if (e.kind === 'refund') s.refunded += e.amount;
    else s.expired -= e.amount;
    s.balance += e.amount;
    const a = span.get(e.account);
    if (a) a.after = e.balanceAfter;
    else span.set(e.account, { asset: e.asset, before: e.balanceBefore, after: e.balanceAfter });
  }
  for (const a of span.values()) perAsset.get(a.asset)!.debt += debtOf(a.after) - debtOf(a.before);
  return [...perAsset].map(([asset, s]) => ({
    asset,
    granted: String(s.granted),
    consumed: String(s.consumed),
    refunded: String(s.refunded),
    expired: String(s.expired),
    balance: String(s.balance),
    debt: String(s.debt),
  }));
}

function debtOf(balance: bigint): bigint {
  return balance < 0n ? -balance : 0n;
}
