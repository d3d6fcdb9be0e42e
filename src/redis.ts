import { Cluster, Redis, type RedisOptions } from 'ioredis';

/** A single Redis or a Redis Cluster: BullMQ and everything tally does with Redis work on both. */
export type RedisClient = Redis | Cluster;

export interface ClusterUrl {
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  tls: boolean;
}

/**
 * A REDIS_URL that lists several nodes — `redis://[user:password@]host:port,host:port,…` — names a Redis Cluster
 * (seed nodes; the rest are discovered). Anything else is one Redis, as ioredis reads it.
 */
export function parseClusterUrl(url: string): ClusterUrl | null {
  const m = /^(rediss?):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)/.exec(url);
  if (!m || !m[4]!.includes(',')) return null;
  const nodes = m[4]!.split(',').map((hostPort) => {
    const at = hostPort.lastIndexOf(':');
    return at > 0 ? { host: hostPort.slice(0, at), port: Number(hostPort.slice(at + 1)) } : { host: hostPort, port: 6379 };
  });
  if (nodes.some((n) => !n.host || !Number.isInteger(n.port) || n.port <= 0 || n.port > 65535)) return null;
  return {
    nodes,
    username: m[2] ? decodeURIComponent(m[2]) : undefined,
    password: m[3] ? decodeURIComponent(m[3]) : undefined,
    tls: m[1] === 'rediss',
  };
}

/** A Redis Cluster key hash tag (`{…}` with something inside): every key of the prefix then shares one slot. */
export function hasHashTag(prefix: string): boolean {
  return /\{[^}]+\}/.test(prefix);
}

/** Whether REDIS_URL is usable: one Redis URL, or several cluster nodes. */
export function isRedisUrl(url: string): boolean {
  if (parseClusterUrl(url)) return true;
  try {
    return /^rediss?:$/.test(new URL(url).protocol);
  } catch {
    return false;
  }
}

/**
 * Redis connections for BullMQ. Workers need `maxRetriesPerRequest: null` so a command waits out a Redis
 * outage instead of failing; producers use the same so an enqueue during a blip is delayed, not lost.
 * On a cluster every key of a queue must share one slot: run with a hash-tagged TALLY_PREFIX such as `{tally}`.
 */
export function createRedis(url: string, extra: RedisOptions = {}): RedisClient {
  const options: RedisOptions = {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 200, 5000),
    ...extra,
  };
  const cluster = parseClusterUrl(url);
  if (!cluster) return new Redis(url, options);
  return new Cluster(cluster.nodes, {
    redisOptions: { ...options, username: cluster.username, password: cluster.password, ...(cluster.tls ? { tls: {} } : {}) },
    clusterRetryStrategy: options.retryStrategy,
    enableReadyCheck: options.enableReadyCheck,
    ...(extra.enableOfflineQueue === undefined ? {} : { enableOfflineQueue: extra.enableOfflineQueue }),
  });
}

/** BullMQ loses jobs silently if Redis may evict keys: refuse such a Redis loudly instead. */
export async function checkEvictionPolicy(redis: RedisClient): Promise<string | null> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
    const policy = reply[1];
    return policy && policy !== 'noeviction' ? `Redis maxmemory-policy is "${policy}"; BullMQ needs "noeviction"` : null;
  } catch {
    return null; // CONFIG may be disabled on managed Redis; nothing to check then
  }
}
