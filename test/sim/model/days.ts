/**
 * Natural days in an IANA timezone (CONTRACT §6: daily caps and decay count natural days in the config's
 * timezone). Intl resolves the zone's offset at each instant, so DST days are exact.
 */
const formats = new Map<string, Intl.DateTimeFormat>();

/** The calendar day `YYYY-MM-DD` that instant `ms` falls on in `tz`. */
export function dayOf(ms: number, tz: string): string {
  let f = formats.get(tz);
  if (!f) formats.set(tz, (f = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' })));
  return f.format(ms);
}

/** Days since 1970-01-01 of a calendar day (pure date arithmetic, no zone). */
export function dayNumber(day: string): number {
  return Math.round(Date.parse(`${day}T00:00:00Z`) / 86_400_000);
}

export function dayFromNumber(n: number): string {
  return new Date(n * 86_400_000).toISOString().slice(0, 10);
}

/** The first instant after `ms` that falls on a later day in `tz` (its next midnight). */
export function nextMidnight(ms: number, tz: string): number {
  const today = dayOf(ms, tz);
  let lo = ms; // on `today`
  let hi = ms + 27 * 3_600_000; // past the day's end whatever the zone's DST does
  while (dayOf(hi, tz) === today) hi += 3_600_000;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (dayOf(mid, tz) === today) lo = mid;
    else hi = mid;
  }
  return hi;
}
