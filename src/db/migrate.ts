import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import type { Sql } from './client.ts';

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'migrations');
const MIGRATE_LOCK = 7_314_001; // pg_advisory_lock key: one migrator at a time, across processes

export interface MigrationFile {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export async function readMigrations(dir = MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((n) => /^\d{3,}_[\w-]+\.sql$/.test(n)).sort();
  const files: MigrationFile[] = [];
  for (const name of names) {
    const sql = await readFile(join(dir, name), 'utf8');
    files.push({
      version: Number(name.slice(0, name.indexOf('_'))),
      name,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    });
  }
  return files;
}

/** Creates the database named in `url` when it does not exist and the role may create databases. */
export async function ensureDatabase(url: string): Promise<boolean> {
  const target = new URL(url);
  const dbName = decodeURIComponent(target.pathname.replace(/^\//, '')) || 'postgres';
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const sql = postgres(admin.toString(), { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`SELECT 1 AS present FROM pg_database WHERE datname = ${dbName}`;
    if (row) return false;
    try {
      await sql`CREATE DATABASE ${sql(dbName)}`;
    } catch (err) {
      if ((err as { code?: string }).code !== '42P04') throw err; // created concurrently: fine
    }
    return true;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export interface MigrateSummary {
  applied: string[];
  current: number;
}

/**
 * Applies pending migrations in order. Each migration and its record commit together; the advisory lock
 * makes a second concurrent migrator wait and then find nothing left to do. An applied migration whose
 * file changed since is refused: migrations are forward-only.
 */
export async function migrate(sql: Sql, dir = MIGRATIONS_DIR): Promise<MigrateSummary> {
  const files = await readMigrations(dir);
  return sql.begin(async (tx) => {
    // A migration may wait for the lock and run long (an index on a big table): no connection timeout applies here.
    await tx`SET LOCAL statement_timeout = 0`;
    await tx`SET LOCAL lock_timeout = 0`;
    await tx`SELECT pg_advisory_xact_lock(${MIGRATE_LOCK})`;
    await tx`CREATE TABLE IF NOT EXISTS tally_migrations (
      version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`;
    const done = new Map<number, { name: string; checksum: string }>();
    for (const r of await tx<{ version: number; name: string; checksum: string }[]>`
      SELECT version, name, checksum FROM tally_migrations`) done.set(r.version, r);
    const applied: string[] = [];
    for (const f of files) {
      const prior = done.get(f.version);
      if (prior) {
        if (prior.checksum !== f.checksum) {
          throw new Error(`migration ${f.name} was changed after it was applied (forward-only: add a new one)`);
        }
        continue;
      }
      await tx.unsafe(f.sql); // trusted file from migrations/, never user input
      await tx`INSERT INTO tally_migrations (version, name, checksum) VALUES (${f.version}, ${f.name}, ${f.checksum})`;
      applied.push(f.name);
    }
    return { applied, current: files.at(-1)?.version ?? 0 };
  });
}
