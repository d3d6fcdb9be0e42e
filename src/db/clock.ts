import type { Db } from './client.ts';

/**
 * The business clock: `tally_now()` (migrations/010_clock.sql), the same clock every ledger transaction,
 * read and sweep uses in SQL. Code that decides by time asks the database rather than its own process clock,
 * so all processes agree, and tests can move time (test/helpers/clock.ts) without sleeping.
 */
export async function dbNow(db: Db): Promise<Date> {
  const [row] = await db<{ now: Date }[]>`SELECT tally_now() AS now`;
  return row!.now;
}
