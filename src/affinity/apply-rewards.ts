import type { Tx } from '../db/client.ts';
import { crossedLevels } from '../domain/affinity.ts';
import { applyLedgerCommands } from '../ledger/apply.ts';
import type { OutboxRow } from '../ledger/sql/outbox.ts';
import { levelKey, type AffinityResult, type ApplyState, type DeviceState, type LevelRewardPlan } from './apply-state.ts';
import { pushedRewards } from './notifications.ts';
import { levelRewardGrants, rewardEventId } from './rewards.ts';

/**
 * Plans the rewards of the levels a rise crossed that are not rewarded yet. They count as in flight for the
 * rest of the batch (a later command crossing them again plans nothing); whether they end up rewarded is
 * settled once the ledger has answered (grantLevelRewards).
 */
export function planLevelRewards(st: ApplyState, dev: DeviceState, before: number, result: AffinityResult, levelUp: OutboxRow | undefined): void {
  const fresh = crossedLevels(st.settings.levels, before, dev.value).filter((l) => !st.rewardedLevels.has(levelKey(dev.userId, dev.deviceId, l.level)));
  if (fresh.length === 0) return;
  for (const l of fresh) st.rewardedLevels.add(levelKey(dev.userId, dev.deviceId, l.level));
  const made = levelRewardGrants(dev.userId, dev.deviceId, fresh);
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
 * accounts after our devices — then settles each plan. Returns the ledger's outbox row count.
 */
export async function grantLevelRewards(tx: Tx, st: ApplyState): Promise<number> {
  const grants = st.rewardPlans.flatMap((p) => p.grants);
  let outboxRows = 0;
  if (grants.length > 0) {
    const report = await applyLedgerCommands(tx, grants.map((g) => g.cmd), { config: st.ctx.config, now: st.ctx.now });
    report.outcomes.forEach((o, j) => (grants[j]!.outcome = o.ok ? o.result.outcome : o.error.code));
    outboxRows = report.outboxRows;
  }
  for (const plan of st.rewardPlans) settlePlan(st, plan);
  return outboxRows;
}

/** `applied` now, or `noop_duplicate`: granted at an earlier crossing that left its level open (same reward id). */
const given = (outcome: string | undefined) => outcome === 'applied' || outcome === 'noop_duplicate';

/**
 * A level counts as rewarded once every one of its rewards is given; the result and the level_up push list
 * exactly the grants applied by this change; the others are reported as pending and their level stays open.
 */
function settlePlan(st: ApplyState, plan: LevelRewardPlan): void {
  const granted = plan.grants.filter((g) => g.outcome === 'applied').map((g) => ({ ...g.reward, outcome: 'applied' }));
  const pending = plan.grants.filter((g) => !given(g.outcome));
  plan.result.rewards = granted;
  if (pending.length > 0) plan.result.rewards_pending = pending.map((g) => ({ ...g.reward, reason: g.outcome ?? 'not_applied' }));
  if (plan.levelUp) (plan.levelUp.data as { rewards: unknown }).rewards = pushedRewards(granted);
  for (const level of plan.levels) {
    if (pending.some((g) => g.reward.level === level)) continue;
    st.writes.grantedLevels.push({ user_id: plan.userId, device_id: plan.deviceId, level, event_id: rewardEventId(plan.userId, plan.deviceId, level, 0) });
  }
}
