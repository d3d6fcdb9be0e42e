import type { Sql } from '../../src/db/client.ts';

/**
 * Deadlocks PostgreSQL detected in this world's database (pg_stat_database). A backend reports its counters when
 * it goes idle or exits: read this after the connections under test are closed (pool ended, processes stopped).
 * A deadlock is retried as a transient fault and so never shows up in results — only here.
 */
export async function deadlocks(sql: Sql, dbName: string): Promise<number> {
  const [row] = await sql<{ deadlocks: bigint }[]>`SELECT deadlocks FROM pg_stat_database WHERE datname = ${dbName}`;
  return Number(row?.deadlocks ?? 0n);
}
