import type { AlertsConfig } from '../config/alerts-webhooks.ts';

/**
 * The balance alerts (CONTRACT §6): `low_balance` (the balance is below `below`) and `overdrawn` (below 0: the
 * account is in debt, and blocked until topped up). Pure functions; the ledger transaction runs them over its
 * entries under the account's lock (src/ledger/alerts.ts), so they decide exactly once under any concurrency.
 *
 * Edge-triggered, per (account, rule):
 *   - a rule **fires** at an entry that lowers the balance (a charge, an expiry) and leaves it below the threshold,
 *     while the rule is armed;
 *   - it **clears** (re-arms) at an entry that leaves the balance at or above the threshold;
 *   - armed = not in the account's `fired` set. A rule the account has never seen is armed: an account already
 *     below a rule that was just added (or whose threshold changed — a new key) alerts once, at its next debit.
 * Money coming in (grants, refunds) never alerts: a new account's first grant of 50 under "below 100" is not a
 * warning; its first charge is. Down, up, down within one transaction is two alerts; a thousand charges while
 * below are none.
 */
export interface BalanceRule {
  /** The state key: `low_balance:<below>` or `overdrawn`. */
  key: string;
  kind: 'low_balance' | 'overdrawn';
  /** The condition is `balance < threshold`. */
  threshold: bigint;
}

/** One entry's effect on the balance: its signed amount and the balance it left. */
export interface BalanceStep {
  amount: bigint;
  balanceAfter: bigint;
}

export interface Crossing {
  /** Index of the entry (in the steps given) that crossed. */
  at: number;
  rule: BalanceRule;
  balance: bigint;
}

const NONE: BalanceRule[] = [];
const byConfig = new WeakMap<AlertsConfig, Map<string, BalanceRule[]>>();

/** The balance rules for an asset, the highest threshold first (the order a falling balance crosses them in). */
export function balanceRulesFor(alerts: AlertsConfig, asset: string): BalanceRule[] {
  let perAsset = byConfig.get(alerts);
  if (!perAsset) {
    perAsset = new Map();
    for (const r of alerts.low_balance) add(perAsset, r.asset, { key: `low_balance:${r.below}`, kind: 'low_balance', threshold: BigInt(r.below) });
    for (const r of alerts.overdrawn) add(perAsset, r.asset, { key: 'overdrawn', kind: 'overdrawn', threshold: 0n });
    for (const rules of perAsset.values()) rules.sort((a, b) => (a.threshold > b.threshold ? -1 : a.threshold < b.threshold ? 1 : 0));
    byConfig.set(alerts, perAsset);
  }
  return perAsset.get(asset) ?? NONE;
}

function add(perAsset: Map<string, BalanceRule[]>, asset: string, rule: BalanceRule): void {
  const rules = perAsset.get(asset) ?? [];
  if (!rules.some((r) => r.key === rule.key)) rules.push(rule); // the config refuses a rule twice; one key, one state
  perAsset.set(asset, rules);
}

/**
 * Walks an account's entries, in order, from the `fired` keys persisted with it. Returns the crossings (alerts to
 * send) and the keys to persist. Keys of rules no longer configured are dropped.
 */
export function watchBalance(rules: readonly BalanceRule[], fired: readonly string[], steps: readonly BalanceStep[]): { crossings: Crossing[]; fired: string[] } {
  const inForce = new Set(rules.map((r) => r.key));
  const state = new Set(fired.filter((k) => inForce.has(k)));
  const crossings: Crossing[] = [];
  steps.forEach(({ amount, balanceAfter: balance }, at) => {
    for (const rule of rules) {
      if (balance >= rule.threshold) state.delete(rule.key);
      else if (amount < 0n && !state.has(rule.key)) {
        state.add(rule.key);
        crossings.push({ at, rule, balance });
      }
    }
  });
  return { crossings, fired: [...state].sort() };
}
