const formats = new Map<string, Intl.DateTimeFormat>();

/** The natural day (YYYY-MM-DD) an instant falls on in an IANA timezone: what daily caps count by. */
export function naturalDay(ms: number, timezone: string): string {
  let f = formats.get(timezone);
  if (!f) {
    // en-CA formats dates as YYYY-MM-DD.
    f = new Intl.DateTimeFormat('en-CA', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formats.set(timezone, f);
  }
  return f.format(ms);
}
