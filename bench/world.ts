import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { applyConfig, readConfigFile } from '../src/config/store.ts';
import { EXAMPLE_CONFIG } from '../src/cli/dev.ts';
import { createDb, type Sql } from '../src/db/client.ts';
import { ensureDatabase, migrate } from '../src/db/migrate.ts';
import type { BenchOptions } from './options.ts';

/**
 * One measurement's world: a fresh, migrated database and a fresh BullMQ prefix, so no measurement
 * inherits another's table bloat, indexes or Redis keys. Dropped afterwards (Redis keys included).
 */
export interface BenchWorld {
  url: string;
  dbName: string;
  prefix: string;
  /** A small pool for the harness itself (setup and checks), not for the workers being measured. */
  sql: Sql;
  /** Environment for a `tally` child process joining this world. */
  childEnv: Record<string, string>;
  drop(): Promise<void>;
}

/** Worlds not yet dropped, so an interrupted run (Ctrl-C) can still clean up after itself. */
const live = new Set<BenchWorld>();
export async function dropLiveWorlds(): Promise<void> {
  await Promise.all([...live].map((w) => w.drop().catch(() => {})));
}

function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export async function createBenchWorld(opts: BenchOptions, label: string, { tally = true } = {}): Promise<BenchWorld> {
  const dbName = uniqueName(`tally_bench_${label.replace(/[^a-z0-9]/gi, '_')}`).toLowerCase();
  const url = `${opts.pgBase}/${dbName}`;
  await ensureDatabase(url);
  // Before any connection opens: ALTER DATABASE … SET applies to sessions started afterwards.
  if (opts.pgSettings.length > 0) await alterDatabase(opts.pgBase, dbName, opts.pgSettings);
  const sql = createDb(url, { max: 4 });
  if (tally) {
    await migrate(sql);
    await applyConfig(sql, await readConfigFile(EXAMPLE_CONFIG));
  }
  const prefix = uniqueName('tb');
  const token = randomBytes(18).toString('base64url');
  const childEnv: Record<string, string> = {
    DATABASE_URL: url,
    REDIS_URL: opts.redisUrl,
    TALLY_PREFIX: prefix,
    TALLY_API_TOKEN: `bench-api-${token}`,
    TALLY_ADMIN_TOKEN: `bench-admin-${token}`,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    TALLY_WORKER_CONCURRENCY: String(opts.concurrency),
    TALLY_BATCH_MAX: String(opts.batchMax),
    TALLY_BATCH_PARALLEL: String(opts.batchParallel),
    TALLY_DB_POOL: String(opts.pool),
  };
  const world: BenchWorld = {
    url,
    dbName,
    prefix,
    sql,
    childEnv,
    async drop() {
      live.delete(world);
      await sql.end({ timeout: 5 });
      await dropDatabase(opts.pgBase, dbName);
      await dropRedisPrefix(opts.redisUrl, prefix);
    },
  };
  live.add(world);
  return world;
}

async function alterDatabase(pgBase: string, dbName: string, settings: [string, string][]): Promise<void> {
  const admin = postgres(`${pgBase}/postgres`, { max: 1, onnotice: () => {} });
  try {
    for (const [name, value] of settings) await admin`ALTER DATABASE ${admin(dbName)} SET ${admin(name)} = ${admin.unsafe(`'${value.replace(/'/g, "''")}'`)}`;
  } finally {
    await admin.end({ timeout: 5 });
  }
}

export async function dropDatabase(pgBase: string, dbName: string): Promise<void> {
  const admin = postgres(`${pgBase}/postgres`, { max: 1, onnotice: () => {} });
  try {
    await admin`DROP DATABASE IF EXISTS ${admin(dbName)} WITH (FORCE)`;
  } catch {
    // best effort: a leftover bench database is harmless (names are unique)
  } finally {
    await admin.end({ timeout: 5 });
  }
}

/** Deletes every key under the prefix (SCAN, not KEYS: others share this Redis). */
async function dropRedisPrefix(redisUrl: string, prefix: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
