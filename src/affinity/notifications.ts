import type { OutboxRow } from '../ledger/sql/outbox.ts';
import type { LevelReward } from './commands.ts';

/** affinity_update always; level_up / level_down when the level moved (CONTRACT §5 shapes). */
export function notifications(
  dev: { userId: string; deviceId: string; value: number; level: number },
  change: number,
  before: number,
  levelBefore: number,
  rewards: LevelReward[],
  ruleKey: string | null,
  source: string,
): OutboxRow[] {
  const rows: OutboxRow[] = [
    { user_id: dev.userId, type: 'affinity_update', data: { device_id: dev.deviceId, change, before, after: dev.value, rule_key: ruleKey, source } },
  ];
  if (dev.level > levelBefore) {
    rows.push({ user_id: dev.userId, type: 'level_up', data: { device_id: dev.deviceId, old_level: levelBefore, new_level: dev.level, rewards: pushedRewards(rewards) } });
  } else if (dev.level < levelBefore) {
    rows.push({ user_id: dev.userId, type: 'level_down', data: { device_id: dev.deviceId, old_level: levelBefore, new_level: dev.level } });
  }
  return rows;
}

/** What a level_up push says of each reward (CONTRACT §5). */
export function pushedRewards(rewards: LevelReward[]): { level: number; asset: string; amount: number }[] {
  return rewards.map((r) => ({ level: r.level, asset: r.asset, amount: r.amount }));
}
