import { alertExpiringSoon } from '../alerts/expiring-soon.ts';
import type { ConfigCache } from '../config/store.ts';
import type { Sql } from '../db/client.ts';
import { runLedger } from '../ledger/transaction.ts';

export interface ExpireSummary {
  task: 'expire';
  accounts: number;
  batches_expired: number;
  amount_expired: number;
  /** expiring_soon alerts written by this run (docs/alerts-webhooks.md). */
  expiring_soon_alerts: number;
}

const CHUNK = 200;

/**
 * The sweep: writes `expire` entries for every batch past its expiry. Reads and charges never wait for it
 * (they treat a lapsed batch as gone already); it makes the history and stored totals catch up. Each chunk
 * of accounts is one ordinary ledger transaction, so it locks and orders exactly like event processing — and
 * decides the balance alerts its expiries cross, like any other. Then the batches about to expire are alerted
 * (`expiring_soon`, once per batch).
 */
export async function runExpire(sql: Sql, configs: ConfigCache): Promise<ExpireSummary> {
  const summary = await sweepLapsed(sql, configs);
  summary.expiring_soon_alerts = await alertExpiringSoon(sql, (await configs.get(sql)).doc.alerts);
  return summary;
}

async function sweepLapsed(sql: Sql, configs: ConfigCache): Promise<ExpireSummary> {
  const summary: ExpireSummary = { task: 'expire', accounts: 0, batches_expired: 0, amount_expired: 0, expiring_soon_alerts: 0 };
  let after = '';
  for (;;) {
    const due = await sql<{ user_id: string; asset: string; key: string }[]>`
      SELECT DISTINCT a.user_id, a.asset, a.user_id || chr(1) || a.asset AS key
      FROM batches b JOIN accounts a USING (account_id)
      WHERE b.open AND b.expires_at <= tally_now() AND a.user_id || chr(1) || a.asset > ${after}
      ORDER BY key LIMIT ${CHUNK}`;
    if (due.length === 0) return summary;
    const report = await runLedger(sql, configs, [], { alsoExpire: due.map((d) => ({ userId: d.user_id, asset: d.asset })) });
    summary.accounts += due.length;
    summary.batches_expired += report.expired.batches;
    summary.amount_expired += Number(report.expired.amount);
    after = due.at(-1)!.key;
  }
}
