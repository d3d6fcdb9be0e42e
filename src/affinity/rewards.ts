import { canonicalJson, sha256 } from '../config/store.ts';
import type { LevelLike } from '../domain/affinity.ts';
import type { GrantCommand } from '../ledger/commands.ts';
import { QUEUE } from '../queues/common.ts';
import type { LevelReward } from './commands.ts';

const MAX_ID = 128;

/**
 * The deterministic event_id of a level's `index`-th reward (grants queue):
 *   lvl.{length of user}.{user}.{length of device}.{device}.{level}.{index}
 * Injective: reading the lengths back splits the id into its parts again, whatever `-`, `.` or `@` the ids hold
 * (the old `lvl-{user}-{device}-{level}` gave user `u-x`/device `d` and user `u`/device `x-d` one id). Beyond the
 * charset's 128 characters it is `lvl.h.{sha256 of that form}` (injective in practice; a readable id has a digit
 * where this has `h`). Every id starts with `lvl.`, which no id of the old format (`lvl-…`) does, so none of
 * the ids already recorded by existing deployments can be met again. The `lvl.` prefix is tally's: a producer
 * grant using such an id takes a reward's place (that reward then stays pending, see docs/affinity.md).
 */
export function rewardEventId(userId: string, deviceId: string, level: number, index: number): string {
  const id = `lvl.${userId.length}.${userId}.${deviceId.length}.${deviceId}.${decimal(level)}.${decimal(index)}`;
  return id.length <= MAX_ID ? id : `lvl.h.${sha256(id)}`;
}

/** An integer in plain decimal (never `1e+21`: `+` is outside the id charset). */
function decimal(n: number): string {
  return BigInt(n).toString();
}

/**
 * The idempotency identity of a reward grant: which reward it is, not what the config said it was worth. A
 * later crossing re-sending a reward already granted (its level stayed open because another of its rewards
 * failed) is then answered noop_duplicate by the ledger even if its amount was re-configured since.
 */
function rewardIdentityHash(userId: string, deviceId: string, level: number, index: number): string {
  return sha256(canonicalJson({ type: 'affinity_level_reward', user_id: userId, device_id: deviceId, level: decimal(level), index }));
}

/** Grant commands (queue `grants`) for each reward of each level, and their report rows, in the same order. */
export function levelRewardGrants(userId: string, deviceId: string, levels: LevelLike[]): { grants: GrantCommand[]; rewards: LevelReward[] } {
  const grants: GrantCommand[] = [];
  const rewards: LevelReward[] = [];
  for (const l of levels) {
    l.rewards.forEach((r, i) => {
      const eventId = rewardEventId(userId, deviceId, l.level, i);
      const payload = { type: 'grant', event_id: eventId, user_id: userId, asset: r.asset, amount: r.amount, source: 'affinity_level', source_id: deviceId };
      grants.push({
        op: 'grant',
        queue: QUEUE.grants,
        eventId,
        jobId: eventId,
        payloadHash: rewardIdentityHash(userId, deviceId, l.level, i),
        payload,
        userId,
        asset: r.asset,
        amount: BigInt(r.amount),
        source: 'affinity_level',
        sourceId: deviceId,
        expiresAt: undefined,
        description: `affinity level ${l.level} reward (device ${deviceId})`,
      });
      rewards.push({ level: l.level, asset: r.asset, amount: r.amount, event_id: eventId });
    });
  }
  return { grants, rewards };
}
