import postgres from 'postgres';
import type { Sql } from '../../src/db/client.ts';

/**
 * Moves a test database's business clock (tally_now(), migrations/010_clock.sql) instead of sleeping. Every
 * process of the world — in this test or spawned — sees the move at its next statement: the offset lives in
 * the database. Only databases marked by `markDrivable` accept an offset; production ones refuse it.
 */
export interface TestClock {
  /** tally_now() as the database sees it. */
  now(): Promise<Date>;
  /** Moves the clock forward (or back, with a negative amount) by `ms`. */
  advance(ms: number): Promise<Date>;
  /** Sets the clock to `at` (wall time + offset = at). */
  set(at: Date): Promise<Date>;
  /** The offset from the wall clock, in ms. */
  offset(): Promise<number>;
}

/** Allows a non-zero clock offset in this database: new sessions see `tally.drivable_clock = on`. */
export async function markDrivable(pgBase: string, dbName: string): Promise<void> {
  const admin = postgres(`${pgBase}/postgres`, { max: 1, onnotice: () => {} });
  try {
    await admin`ALTER DATABASE ${admin(dbName)} SET tally.drivable_clock = 'on'`;
  } finally {
    await admin.end({ timeout: 5 });
  }
}

export function testClock(sql: Sql): TestClock {
  const now = async () => (await sql<{ now: Date }[]>`SELECT tally_now() AS now`)[0]!.now;
  return {
    now,
    async advance(ms) {
      await sql`UPDATE tally_clock SET offset_ms = offset_ms + ${Math.round(ms)}`;
      return now();
    },
    async set(at) {
      await sql`UPDATE tally_clock SET offset_ms = (extract(epoch FROM ${at}::timestamptz - now()) * 1000)::bigint`;
      return now();
    },
    async offset() {
      const [row] = await sql<{ offset_ms: bigint }[]>`SELECT offset_ms FROM tally_clock`;
      return Number(row!.offset_ms);
    },
  };
}
