import { Redis, type RedisOptions } from 'ioredis';

/**
 * Redis connections for BullMQ. Workers need `maxRetriesPerRequest: null` so a command waits out a Redis
 * outage instead of failing; producers use the same so an enqueue during a blip is delayed, not lost.
 */
export function createRedis(url: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 200, 5000),
    ...extra,
  });
}

/** BullMQ loses jobs silently if Redis may evict keys: refuse such a Redis loudly instead. */
export async function checkEvictionPolicy(redis: Redis): Promise<string | null> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
    const policy = reply[1];
    return policy && policy !== 'noeviction' ? `Redis maxmemory-policy is "${policy}"; BullMQ needs "noeviction"` : null;
  } catch {
    return null; // CONFIG may be disabled on managed Redis; nothing to check then
  }
}
