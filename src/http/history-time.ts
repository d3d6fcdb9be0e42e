import { z } from 'zod';
import type { Db } from '../db/client.ts';
import { HttpError } from '../errors.ts';

/**
 * An instant in a history query: ISO-8601 with a zone, years 0001–9999 (PostgreSQL has no year 0). Wider than the
 * instants a payload may carry (1970–9998, src/queues/common.ts): a reader may ask about any range, and nothing
 * booked lies outside the narrower one.
 */
export const historyInstant = z.iso
  .datetime({ offset: true, message: 'must be an ISO-8601 timestamp with a zone' })
  .refine((s) => !/^0000/.test(s) && !Number.isNaN(Date.parse(s)), 'the year must be 0001–9999');

/** `from` after `to` is a malformed range (400), not an empty one. */
export function checkRange(from: string | undefined, to: string | undefined): void {
  if (from !== undefined && to !== undefined && Date.parse(from) > Date.parse(to)) {
    throw new HttpError(400, 'invalid_range', '`from` must not be after `to`');
  }
}

/** A query's time range, as zod fields: `from` inclusive, `to` exclusive. */
export const rangeFields = {
  from: historyInstant.optional().describe('inclusive: entries whose created_at (to the millisecond) is at or after it'),
  to: historyInstant.optional().describe('exclusive: entries whose created_at (to the millisecond) is before it'),
};

/**
 * The database's clock against an instant: whether `at` lies ahead of tally_now() (the business clock, so a test
 * or simulation that moves it sees history move with it), and the statement's end: `to`, but never past now.
 */
export async function clockFor(db: Db, at: string | undefined): Promise<{ future: boolean; until: string; untilIso: string }> {
  const [row] = await db<{ future: boolean; until: string; until_iso: string }[]>`
    SELECT coalesce(${at ?? null}::text::timestamptz > tally_now(), false) AS future,
      least(coalesce(${at ?? null}::text::timestamptz, 'infinity'), tally_now())::text AS until,
      to_char(least(coalesce(${at ?? null}::text::timestamptz, 'infinity'), tally_now()) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS until_iso`;
  // The ISO text comes from PostgreSQL: a Date parsed from its text output reads years 0001–0099 as 19xx/20xx.
  return { future: row!.future, until: row!.until, untilIso: row!.until_iso };
}
