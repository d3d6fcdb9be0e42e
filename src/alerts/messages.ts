import type { BalanceRule } from './balance-rules.ts';

/**
 * The `data` of an `alert` outbox row (CONTRACT §6: `{kind, asset, balance?, threshold?, batch_id?, amount?,
 * expires_at?}`), pushed over WebSocket and posted to webhooks as is. Amounts are JSON numbers (≤ 2^53 − 1).
 */
export type AlertKind = 'low_balance' | 'overdrawn' | 'expiring_soon';

export interface BalanceAlertData {
  kind: 'low_balance' | 'overdrawn';
  asset: string;
  /** The balance the crossing entry left. */
  balance: number;
  /** low_balance: the rule's `below`; overdrawn: 0. */
  threshold: number;
  /** overdrawn: what the account owes (−balance). */
  debt?: number;
  /** The ledger entry that crossed (the `transaction_id` of its `balance_changed`). */
  transaction_id: string;
}

export function balanceAlertData(rule: BalanceRule, asset: string, balance: bigint, transactionId: string): BalanceAlertData {
  const data: BalanceAlertData = { kind: rule.kind, asset, balance: Number(balance), threshold: Number(rule.threshold), transaction_id: transactionId };
  if (rule.kind === 'overdrawn') data.debt = Number(-balance);
  return data;
}

export interface ExpiringAlertData {
  kind: 'expiring_soon';
  asset: string;
  batch_id: string;
  /** What the batch still holds (will expire unless spent). */
  amount: number;
  expires_at: string;
  /** The rule that matched. */
  within_days: number;
}
