import type { AlertsConfig } from '../config/alerts-webhooks.ts';
import type { Db } from '../db/client.ts';
import { outboxCommitted } from '../outbox/after-commit.ts';
import { alertsCommitted } from './counted.ts';
import { alertExpiringBatches, forgetExpiredMarks } from './sql/expiring-batches.ts';

const PAGE = 1000;

/**
 * `expiring_soon` (CONTRACT §6), decided by the expire maintenance — scheduled, and `tally maintenance expire` —
 * on the business clock: every batch with at least `min_amount` left that expires within `within_days` gets one
 * alert, ever (docs/alerts-webhooks.md "Alerts"). Returns how many alerts it wrote.
 */
export async function alertExpiringSoon(db: Db, alerts: AlertsConfig): Promise<number> {
  await forgetExpiredMarks(db);
  const rules = alerts.expiring_soon;
  if (rules.length === 0) return 0;
  let written = 0;
  for (;;) {
    const { due, assets } = await alertExpiringBatches(db, rules, PAGE);
    written += assets.length;
    if (assets.length > 0) {
      outboxCommitted(assets.length);
      alertsCommitted(assets.map((asset) => ({ kind: 'expiring_soon', asset })));
    }
    if (due < PAGE) return written;
  }
}
