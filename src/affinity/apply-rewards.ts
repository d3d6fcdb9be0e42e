import type { Tx } from '../db/client.ts';
import { crossedLevels } from '../domain/affinity.ts';
import { applyLedgerCommands } from '../ledger/apply.ts';
import type { OutboxRow } from '../ledger/sql/outbox.ts';
import { levelKey, type AffinityResult, type ApplyState, type DeviceState } from './apply-state.ts';
import { pushedRewards } from './notifications.ts';
import { levelRewardGrants } from './rewards.ts';

/** Each level a rise crossed for the first time ever earns its rewards, as grants in this same transaction. */
export function planLevelRewards(st: ApplyState, dev: DeviceState, before: number, result: AffinityResult, levelUp: OutboxRow | undefined): void {
  const fresh = crossedLevels(st.settings.levels, before, dev.value).filter((l) => !st.rewardedLevels.has(levelKey(dev.userId, dev.deviceId, l.level)));
  if (fresh.length === 0) return;
  const made = levelRewardGrants(dev.userId, dev.deviceId, fresh);
  for (const l of fresh) {
    st.rewardedLevels.add(levelKey(dev.userId, dev.deviceId, l.level));
    const eventId = made.rewards.find((r) => r.level === l.level)?.event_id ?? `lvl-${l.level}`;
    st.writes.grantedLevels.push({ user_id: dev.userId, device_id: dev.deviceId, level: l.level, event_id: eventId });
  }
  result.rewards = made.rewards;
  if (levelUp) (levelUp.data as { rewards: unknown }).rewards = pushedRewards(made.rewards);
  st.rewardPlans.push({
    userId: dev.userId,
    deviceId: dev.deviceId,
    levels: fresh.map((l) => l.level),
    grants: made.grants.map((cmd, j) => ({ cmd, reward: made.rewards[j]! })),
    result,
    levelUp,
  });
}

/**
 * Sends every planned reward grant through the credits ledger in this transaction — its one call, which locks
 * accounts after our devices — and reports each grant's outcome. Returns the ledger's outbox row count.
 */
export async function grantLevelRewards(tx: Tx, st: ApplyState): Promise<number> {
  const grants = st.rewardPlans.flatMap((p) => p.grants);
  if (grants.length === 0) return 0;
  const report = await applyLedgerCommands(tx, grants.map((g) => g.cmd), { config: st.ctx.config, now: st.ctx.now });
  report.outcomes.forEach((o, j) => {
    grants[j]!.reward.outcome = o.ok ? o.result.outcome : o.error.code;
  });
  return report.outboxRows;
}
