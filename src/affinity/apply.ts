import type { Tx } from '../db/client.ts';
import type { CommandOutcome } from '../ledger/commands.ts';
import { answerReplays, decideCommand } from './apply-decide.ts';
import { lockAndLoad } from './apply-load.ts';
import { grantLevelRewards } from './apply-rewards.ts';
import { createApplyState, type AffinityApplyContext } from './apply-state.ts';
import { writeDecisions } from './apply-write.ts';
import type { AffinityCommand } from './commands.ts';

export type { AffinityApplyContext } from './apply-state.ts';
export { GLOBAL_SCOPE } from './apply-state.ts';

export interface AffinityReport {
  outcomes: CommandOutcome[];
  /** Outbox rows written, ours and the reward grants' (for the relay's after-commit fast path). */
  outboxRows: number;
}

/**
 * Applies affinity commands in one transaction, in order, all or nothing. The phases share one state
 * (apply-state.ts):
 *   1. lock the batch's devices (sorted) and load what deciding needs   — apply-load.ts
 *   2. decide every command in arrival order with the domain functions  — apply-decide.ts
 *      (a later command sees an earlier one's effect)
 *   3. grant the rewards of the levels crossed, through the ledger      — apply-rewards.ts
 *      (then replays get their original results, as settled)
 *   4. write scores, log, counters, rewarded levels, decisions, outbox  — apply-write.ts
 */
export async function applyAffinityCommands(tx: Tx, cmds: AffinityCommand[], ctx: AffinityApplyContext): Promise<AffinityReport> {
  if (cmds.length === 0) return { outcomes: [], outboxRows: 0 };
  const st = createApplyState(cmds, ctx);
  if (ctx.beforeLocks) await ctx.beforeLocks(); // after the group-commit runs ahead of it on the same devices
  await lockAndLoad(tx, st);
  for (let i = 0; i < cmds.length; i++) decideCommand(st, i);
  const ledgerOutboxRows = await grantLevelRewards(tx, st);
  answerReplays(st);
  await writeDecisions(tx, st);
  return { outcomes: st.outcomes, outboxRows: st.writes.outbox.length + ledgerOutboxRows };
}
