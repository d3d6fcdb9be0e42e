/**
 * Natural days: the calendar day (`YYYY-MM-DD`) an instant falls on in an IANA timezone. Daily caps (affinity and
 * reward rules) and decay count by them. One implementation for all of them, so the ledger and the affinity
 * engine can never disagree on which day an event belongs to.
 */

const dayFormats = new Map<string, Intl.DateTimeFormat>();

/**
 * The natural day of an instant in `timeZone`. Intl resolves the zone's offset at that very instant, so days that
 * start or end across a DST change are exact. Built from the formatted parts, not from a locale's date pattern
 * (which ICU versions have changed).
 */
export function dayKey(at: Date | number, timeZone: string): string {
  let f = dayFormats.get(timeZone);
  // Stryker: equivalent — the cache only saves time (true: a new formatter each call, same answer).
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    dayFormats.set(timeZone, f);
  }
  // Stryker: equivalent — the initial values are always overwritten: formatToParts gives year, month and day.
  let year = '';
  let month = '';
  let day = '';
  for (const p of f.formatToParts(at)) {
    if (p.type === 'year') year = p.value;
    else if (p.type === 'month') month = p.value;
    else if (p.type === 'day') day = p.value;
  }
  return `${year}-${month}-${day}`;
}

/** The natural day (YYYY-MM-DD) an instant (ms) falls on in an IANA timezone: what daily caps count by. */
export function naturalDay(ms: number, timezone: string): string {
  return dayKey(ms, timezone);
}

/** Whole calendar days from day `a` to day `b` (both `YYYY-MM-DD`); negative when b is earlier. */
export function daysBetween(a: string, b: string): number {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000);
}

/** The day `n` days after `day` (before, for a negative n). */
export function addDays(day: string, n: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
}
