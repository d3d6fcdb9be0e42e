import type { AlertSent } from '../alerts/counted.ts';
import { balanceRulesFor, watchBalance } from '../alerts/balance-rules.ts';
import type { AccountState } from '../domain/account.ts';
import type { LedgerTx, PendingEntry } from './state.ts';

/**
 * Phase 5½, watch. The balance alerts (low_balance, overdrawn) this transaction's entries cross, decided here
 * because only here is the crossing seen exactly once: the account's row lock serialises every entry of it, and
 * the fired state is written with the account by the same UPDATE (docs/alerts-webhooks.md "Alerts"). Nothing is
 * read or written for it beyond what the transaction does anyway: the state comes with the locked row, the alerts
 * are more rows of the one outbox INSERT, the state one more column of the one account UPDATE.
 *
 * Every entry counts — expiries closed by this transaction (the sweep's, too), refunds, grants expired on arrival —
 * each at the balance it left, so the alert names the entry that crossed.
 */
export function watchAlerts(st: LedgerTx): AlertSent[] {
  const sent: AlertSent[] = [];
  for (const [acct, entries] of entriesByAccount(st.pending)) {
    const rules = balanceRulesFor(st.config.alerts, acct.asset);
    const fired = st.alertsFired.get(acct) ?? [];
    if (rules.length === 0 && fired.length === 0) continue; // no rule for this asset: nothing to decide, nothing to forget
    const watched = watchBalance(rules, fired, entries.map((e) => e.draft));
    st.alertsFired.set(acct, watched.fired);
    for (const c of watched.crossings) {
      const entry = entries[c.at]!;
      const list = st.alerts.get(entry);
      if (list) list.push(c.rule);
      else st.alerts.set(entry, [c.rule]);
      sent.push({ kind: c.rule.kind, asset: acct.asset });
    }
  }
  return sent;
}

function entriesByAccount(pending: PendingEntry[]): Map<AccountState, PendingEntry[]> {
  const by = new Map<AccountState, PendingEntry[]>();
  for (const p of pending) {
    const list = by.get(p.acct);
    if (list) list.push(p);
    else by.set(p.acct, [p]);
  }
  return by;
}
