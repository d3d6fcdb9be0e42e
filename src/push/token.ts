import { createHmac, timingSafeEqual } from 'node:crypto';
import { idSchema } from '../queues/common.ts';

/**
 * WebSocket client tokens, CONTRACT §5:
 *   T = base64url(json{user_id, exp}) + "." + base64url(HMAC-SHA256(TALLY_WS_SECRET, first part))
 * `exp` is in Unix seconds. The signature is over the first part exactly as sent (not a re-encoding),
 * so any signer that follows the formula interoperates.
 */
export interface TokenClaims {
  userId: string;
  /** Unix seconds. */
  exp: number;
}

export type TokenRefusal = 'missing' | 'malformed' | 'forged' | 'expired' | 'too_long' | 'no_secret';
export type TokenCheck = { ok: true; claims: TokenClaims } | { ok: false; reason: TokenRefusal };

export interface VerifyOptions {
  /** Unix seconds; defaults to the wall clock (tokens are minted by other services on theirs). */
  nowSeconds?: number;
  /** A token whose `exp` lies further ahead than this is refused (`TALLY_WS_MAX_TTL_SECONDS`). */
  maxTtlSeconds?: number;
}

/** base64url, padded or not: Python's `urlsafe_b64encode` pads, Node's `base64url` does not; both are RFC 4648 §5. */
const B64URL = /^[A-Za-z0-9_-]+={0,2}$/;
/** Longest token we parse: a 128-char user id and a 16-digit exp encode far below this (about 280 chars). */
const MAX_TOKEN_LENGTH = 1024;

function mac(secret: string, body: string): Buffer {
  return createHmac('sha256', secret).update(body).digest();
}

export function signToken(secret: string, claims: TokenClaims): string {
  const body = Buffer.from(JSON.stringify({ user_id: claims.userId, exp: claims.exp })).toString('base64url');
  return `${body}.${mac(secret, body).toString('base64url')}`;
}

/**
 * Checks the signature before looking at the claims, so a forged token learns nothing about parsing. `exp` must
 * be a positive number of Unix seconds below 2^53 (1e300, strings, null → malformed; a fraction, as Python's
 * `time.time() + 3600` gives, is taken down to the whole second), in the future, and no further ahead than the
 * ceiling: a leaked token must not live for ever.
 */
export function verifyToken(secret: string | undefined, token: unknown, opts: VerifyOptions = {}): TokenCheck {
  const nowSeconds = opts.nowSeconds ?? Date.now() / 1000;
  if (!secret) return { ok: false, reason: 'no_secret' };
  if (typeof token !== 'string' || !token) return { ok: false, reason: 'missing' }; // (a repeated query key is an array)
  if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
  const parts = token.split('.');
  if (parts.length !== 2) return { ok: false, reason: 'malformed' };
  const [body, sig] = parts as [string, string];
  if (!B64URL.test(body) || !B64URL.test(sig)) return { ok: false, reason: 'malformed' };
  const given = Buffer.from(sig, 'base64url');
  const expected = mac(secret, body);
  // The expected length is public (SHA-256), so checking it first leaks nothing; the comparison is constant-time.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'forged' };
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const { user_id: userId, exp } = (claims ?? {}) as { user_id?: unknown; exp?: unknown };
  if (typeof userId !== 'string' || !idSchema.safeParse(userId).success) return { ok: false, reason: 'malformed' };
  if (typeof exp !== 'number' || !Number.isFinite(exp) || exp <= 0 || exp > Number.MAX_SAFE_INTEGER) return { ok: false, reason: 'malformed' };
  const whole = Math.floor(exp);
  if (whole <= nowSeconds) return { ok: false, reason: 'expired' };
  if (opts.maxTtlSeconds !== undefined && whole - nowSeconds > opts.maxTtlSeconds) return { ok: false, reason: 'too_long' };
  return { ok: true, claims: { userId, exp: whole } };
}

/** `90s`, `15m`, `1h`, `7d` or plain seconds → seconds. */
export function parseTtl(text: string): number | null {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  const seconds = n * unit;
  return seconds > 0 && Number.isSafeInteger(seconds) ? seconds : null;
}
