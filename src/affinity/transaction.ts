import type { ConfigCache } from '../config/store.ts';
import type { Sql } from '../db/client.ts';
import type { CommandOutcome } from '../ledger/commands.ts';
import { outboxCommitted } from '../outbox/after-commit.ts';
import { applyAffinityCommands, type AffinityReport } from './apply.ts';
import type { AffinityCommand } from './commands.ts';
import type { RunTurn } from '../workers/batcher.ts';

/** One affinity transaction: the clock and config version in force, then every command in order. */
export async function runAffinityTransaction(sql: Sql, configs: ConfigCache, cmds: AffinityCommand[], turn?: RunTurn): Promise<CommandOutcome[]> {
  const report = (await sql.begin(async (tx) => {
    const [clock] = await tx<{ now: Date; version: bigint | null }[]>`
      SELECT tally_now() AS now, (SELECT max(version) FROM config_documents) AS version`;
    const config = await configs.ensure(tx, Number(clock!.version ?? 0));
    return applyAffinityCommands(tx, cmds, { config: config.doc, now: clock!.now, beforeLocks: turn?.beforeLocks });
  })) as AffinityReport;
  outboxCommitted(report.outboxRows);
  return report.outcomes;
}
