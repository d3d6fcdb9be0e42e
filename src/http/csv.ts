/**
 * One CSV line (RFC 4180, CRLF). Text cells that a spreadsheet would read as a formula — starting with = + - @,
 * a tab or a carriage return — are prefixed with a single quote (OWASP "CSV injection"); numbers are written as
 * numbers and never prefixed (a negative amount stays a number). A cell with a comma, a quote, CR or LF is quoted,
 * quotes doubled.
 */
export function csvLine(cells: readonly (string | number | null | undefined)[]): string {
  return `${cells.map(cell).join(',')}\r\n`;
}

function cell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return String(v);
  const text = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
