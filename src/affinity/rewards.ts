import { canonicalJson, sha256 } from '../config/store.ts';
import type { LevelLike } from '../domain/affinity.ts';
import type { GrantCommand } from '../ledger/commands.ts';
import { QUEUE } from '../queues/common.ts';
import type { LevelReward } from './commands.ts';

const MAX_ID = 128;

/**
 * The deterministic event_id of a level reward: `lvl-{user}-{device}-{level}` (`…-{level}.{n}` for a level's
 * further rewards). Ids too long for the charset's 128 chars are hashed; the prefix keeps them readable
 * and never all digits.
 */
export function rewardEventId(userId: string, deviceId: string, level: number, index: number): string {
  const id = `lvl-${userId}-${deviceId}-${level}${index === 0 ? '' : `.${index}`}`;
  return id.length <= MAX_ID ? id : `lvl-h-${sha256(id).slice(0, 48)}`;
}

/** Grant commands (queue `grants`) for each reward of each newly crossed level, and their report rows. */
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
        payloadHash: sha256(canonicalJson(payload)),
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
