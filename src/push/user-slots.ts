import type { RedisClient as Redis } from '../redis.ts';

/**
 * A user's open sockets across every gateway process, in Redis (docs/push.md "Limits"): a sorted set of socket
 * ids by connect time and a hash of when each was last confirmed alive. Claiming a slot adds the new socket and
 * returns the oldest ones beyond the cap, which their gateways close (code 4008). An entry whose gateway stopped
 * confirming it (a crashed process) is dropped after `staleMs`, so a dead gateway cannot lock a user out.
 *
 * KEYS[1] zset socket id → connect time (ms), KEYS[2] hash socket id → last seen (ms)
 * ARGV[1] socket id, ARGV[2] now (ms), ARGV[3] stale after (ms), ARGV[4] cap, ARGV[5] key ttl (ms)
 * returns the socket ids to close, oldest first
 */
const CLAIM = `
local now = tonumber(ARGV[2])
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local seen = tonumber(redis.call('HGET', KEYS[2], m) or '0')
  if seen < now - tonumber(ARGV[3]) then
    redis.call('ZREM', KEYS[1], m)
    redis.call('HDEL', KEYS[2], m)
  end
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], now)
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
local victims = {}
if over > 0 then
  victims = redis.call('ZRANGE', KEYS[1], 0, over - 1)
  for _, m in ipairs(victims) do
    redis.call('ZREM', KEYS[1], m)
    redis.call('HDEL', KEYS[2], m)
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return victims
`;

/**
 * KEYS[1] zset, KEYS[2] hash; ARGV[1] now (ms), ARGV[2] key ttl (ms), ARGV[3…] socket ids still open here.
 * Refreshes only ids still in the set: one closed by a claim elsewhere stays out.
 */
const REFRESH = `
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then redis.call('HSET', KEYS[2], ARGV[i], ARGV[1]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 0
`;

const RELEASE = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 0
`;

type Scripted = Redis & {
  pushSlotClaim(k1: string, k2: string, ...args: (string | number)[]): Promise<string[]>;
  pushSlotRefresh(k1: string, k2: string, ...args: (string | number)[]): Promise<number>;
  pushSlotRelease(k1: string, k2: string, id: string): Promise<number>;
};

export class UserSlots {
  private readonly redis: Scripted;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly opts: { maxPerUser: number; staleMs: () => number },
  ) {
    redis.defineCommand('pushSlotClaim', { numberOfKeys: 2, lua: CLAIM });
    redis.defineCommand('pushSlotRefresh', { numberOfKeys: 2, lua: REFRESH });
    redis.defineCommand('pushSlotRelease', { numberOfKeys: 2, lua: RELEASE });
    this.redis = redis as Scripted;
  }

  /** Same hash tag as the prefix, so both keys share a cluster slot. */
  private keys(userId: string): [string, string] {
    return [`${this.prefix}:push:sockets:${userId}`, `${this.prefix}:push:sockets-seen:${userId}`];
  }

  private ttlMs(): number {
    return Math.max(4 * this.opts.staleMs(), 60_000);
  }

  /** Adds the socket; returns the ids of the user's sockets to close (the oldest beyond the cap). */
  claim(userId: string, socketId: string): Promise<string[]> {
    const [z, h] = this.keys(userId);
    return this.redis.pushSlotClaim(z, h, socketId, Date.now(), this.opts.staleMs(), this.opts.maxPerUser, this.ttlMs());
  }

  /** Confirms a user's sockets on this process are alive (each heartbeat). */
  async refresh(userId: string, socketIds: string[]): Promise<void> {
    if (socketIds.length === 0) return;
    const [z, h] = this.keys(userId);
    await this.redis.pushSlotRefresh(z, h, Date.now(), this.ttlMs(), ...socketIds);
  }

  async release(userId: string, socketId: string): Promise<void> {
    const [z, h] = this.keys(userId);
    await this.redis.pushSlotRelease(z, h, socketId);
  }
}
