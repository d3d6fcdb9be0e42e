import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures, Stripe's scheme (so receivers' existing verifiers work):
 *   X-Tally-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + raw body)>
 * The timestamp is signed with the body, so a receiver that checks it against its clock (with a tolerance)
 * refuses a captured request replayed later. Each attempt is signed anew, with its own `t`.
 */
export const SIGNATURE_HEADER = 'x-tally-signature';

export function signatureOf(secret: string, t: number, body: string): string {
  return createHmac('sha256', secret).update(`${t}.${body}`, 'utf8').digest('hex');
}

export function signatureHeader(secret: string, body: string, now: Date = new Date()): string {
  const t = Math.floor(now.getTime() / 1000);
  return `t=${t},v1=${signatureOf(secret, t, body)}`;
}

export type VerifyFailure = 'malformed_header' | 'no_matching_signature' | 'timestamp_outside_tolerance';

/**
 * What a receiver does (written like Stripe's documented verifier): parse `t` and every `v1`, recompute the
 * HMAC over `t.body` with the raw body bytes, compare in constant time with each `v1`, then refuse a `t`
 * further than `toleranceS` from now (default 300 s). Returns null when the request is authentic.
 */
export function verifySignature(secret: string, header: string | undefined, rawBody: string, opts: { toleranceS?: number; now?: Date } = {}): VerifyFailure | null {
  if (!header) return 'malformed_header';
  let t: number | undefined;
  const v1: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const [k, v] = [part.slice(0, eq).trim(), part.slice(eq + 1).trim()];
    if (k === 't' && /^\d{1,12}$/.test(v)) t = Number(v);
    else if (k === 'v1' && /^[0-9a-f]{64}$/.test(v)) v1.push(v);
  }
  if (t === undefined || v1.length === 0) return 'malformed_header';
  const expected = Buffer.from(signatureOf(secret, t, rawBody), 'hex');
  if (!v1.some((s) => timingSafeEqual(Buffer.from(s, 'hex'), expected))) return 'no_matching_signature';
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - t) > (opts.toleranceS ?? 300)) return 'timestamp_outside_tolerance';
  return null;
}
