import type { RedisClient as Redis } from './redis.ts';
import { ConfigCache } from './config/store.ts';
import type { Env } from './config/env.ts';
import { createDb, dbTimeouts, type Sql } from './db/client.ts';
import { createLogger, type Logger } from './log.ts';
import { TallyProducer } from './producers/index.ts';
import { createRedis } from './redis.ts';

/** The one place that wires dependencies; everything else receives them. */
export interface AppContext {
  env: Env;
  log: Logger;
  sql: Sql;
  redis: Redis;
  configs: ConfigCache;
  producer: TallyProducer;
  close(): Promise<void>;
}

export function createContext(env: Env, log: Logger = createLogger(env.LOG_LEVEL)): AppContext {
  const sql = createDb(env.DATABASE_URL, { max: env.TALLY_DB_POOL, timeouts: dbTimeouts(env) });
  const redis = createRedis(env.REDIS_URL);
  redis.on('error', (err) => log.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'redis connection error'));
  const producer = new TallyProducer({ redis, prefix: env.TALLY_PREFIX });
  return {
    env,
    log,
    sql,
    redis,
    configs: new ConfigCache(),
    producer,
    async close() {
      await producer.close().catch(() => {});
      await redis.quit().catch(() => redis.disconnect());
      await sql.end({ timeout: 2 }); // in-flight queries had the grace period already; a dead server must not hold the exit
    },
  };
}
