import { alertsCommitted } from '../alerts/counted.ts';
import type { ConfigCache } from '../config/store.ts';
import type { Sql } from '../db/client.ts';
import { applyLedgerCommands, type ApplyContext, type ApplyReport } from './apply.ts';
import { outboxCommitted } from '../outbox/after-commit.ts';
import type { CommandOutcome, LedgerCommand } from './commands.ts';
import { lookUpEarly } from './prepare.ts';
import type { RunTurn } from '../workers/batcher.ts';

/** One ledger transaction: the transaction's clock and config version, then every command in order. */
export async function runLedgerTransaction(sql: Sql, configs: ConfigCache, cmds: LedgerCommand[], turn?: RunTurn): Promise<CommandOutcome[]> {
  return (await runLedger(sql, configs, cmds, turn ? { beforeLocks: turn.beforeLocks } : {})).outcomes;
}

export async function runLedger(
  sql: Sql,
  configs: ConfigCache,
  cmds: LedgerCommand[],
  extra: Pick<ApplyContext, 'alsoExpire' | 'beforeLocks'> = {},
): Promise<ApplyReport> {
  const report = (await sql.begin(async (tx) => {
    // The clock, the config version in force, the price versions in force when each usage happened and the
    // charges refunds name: one round trip.
    const [[clock], early] = await Promise.all([
      tx<{ now: Date; version: bigint | null }[]>`SELECT tally_now() AS now, (SELECT max(version) FROM config_documents) AS version`,
      lookUpEarly(tx, cmds),
    ]);
    const config = await configs.ensure(tx, Number(clock!.version ?? 0));
    return applyLedgerCommands(tx, cmds, { ...extra, config: config.doc, now: clock!.now, early });
  })) as ApplyReport;
  outboxCommitted(report.outboxRows);
  alertsCommitted(report.alerts);
  return report;
}
