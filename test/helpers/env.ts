import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { parseEnv, type Env } from '../../src/config/env.ts';
import { applyConfig, readConfigFile } from '../../src/config/store.ts';
import { createDb, type Sql } from '../../src/db/client.ts';
import { ensureDatabase, migrate } from '../../src/db/migrate.ts';
import { EXAMPLE_CONFIG } from '../../src/cli/dev.ts';
import { markDrivable, testClock, type TestClock } from './clock.ts';

export const PG_BASE = process.env.TEST_DATABASE_BASE ?? 'postgres://127.0.0.1:5432';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export const API_TOKEN = 'test-api-token-0123456789';
export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const WS_SECRET = 'test-ws-secret-0123456789';
export const PAYMENT_SECRET = 'test-payment-secret-0123456789';

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/** An isolated world for one test file: its own database (migrated) and its own BullMQ prefix. */
export interface TestWorld {
  env: Env;
  sql: Sql;
  dbName: string;
  /** Extra variables for child processes (`tally start` in a subprocess) to join this world. */
  childEnv: Record<string, string>;
  /** The world's business clock (tally_now()), movable without sleeping. */
  clock: TestClock;
  applyExampleConfig(): Promise<void>;
  applyConfig(doc: unknown): Promise<void>;
  drop(): Promise<void>;
}

export async function createWorld(overrides: Record<string, string> = {}): Promise<TestWorld> {
  const dbName = uniqueName('tally_t');
  const url = `${PG_BASE}/${dbName}`;
  await ensureDatabase(url);
  await markDrivable(PG_BASE, dbName);
  const sql = createDb(url, { max: 10 });
  await migrate(sql);
  const childEnv: Record<string, string> = {
    DATABASE_URL: url,
    REDIS_URL,
    TALLY_PREFIX: uniqueName('tt'),
    TALLY_API_TOKEN: API_TOKEN,
    TALLY_ADMIN_TOKEN: ADMIN_TOKEN,
    TALLY_WS_SECRET: WS_SECRET,
    TALLY_PAYMENT_SECRET: PAYMENT_SECRET,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...overrides,
  };
  const env = parseEnv(childEnv);
  return {
    env,
    sql,
    dbName,
    childEnv,
    clock: testClock(sql),
    async applyExampleConfig() {
      await applyConfig(sql, await readConfigFile(EXAMPLE_CONFIG));
    },
    async applyConfig(doc: unknown) {
      await applyConfig(sql, doc);
    },
    async drop() {
      await sql.end({ timeout: 5 });
      const admin = postgres(`${PG_BASE}/postgres`, { max: 1, onnotice: () => {} });
      try {
        await admin`DROP DATABASE IF EXISTS ${admin(dbName)} WITH (FORCE)`;
      } catch {
        // best effort: a leftover test database is harmless (names are unique)
      } finally {
        await admin.end({ timeout: 5 });
      }
    },
  };
}
