import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseEnv } from '../src/config/env.ts';
import { parseTtl, signToken, verifyToken } from '../src/push/token.ts';
import { WS_SECRET } from './helpers/env.ts';
import { ROOT } from './helpers/tally.ts';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const now = 1_800_000_000;

describe('WebSocket tokens (CONTRACT §5)', () => {
  it('follows the formula: base64url(json{user_id, exp}) "." base64url(HMAC-SHA256(secret, first part))', () => {
    // Built by hand, as another service would, and accepted.
    const body = Buffer.from(JSON.stringify({ user_id: 'alice', exp: now + 60 })).toString('base64url');
    const sig = createHmac('sha256', WS_SECRET).update(body).digest('base64url');
    expect(verifyToken(WS_SECRET, `${body}.${sig}`, { nowSeconds: now })).toEqual({ ok: true, claims: { userId: 'alice', exp: now + 60 } });
    expect(signToken(WS_SECRET, { userId: 'alice', exp: now + 60 })).toBe(`${body}.${sig}`);
  });

  it('refuses forged, expired, malformed and missing tokens, each with its reason', () => {
    const good = signToken(WS_SECRET, { userId: 'alice', exp: now + 60 });
    const [body, sig] = good.split('.') as [string, string];
    const other = Buffer.from(JSON.stringify({ user_id: 'mallory', exp: now + 60 })).toString('base64url');
    expect(verifyToken(WS_SECRET, signToken('another-secret-0123456789', { userId: 'alice', exp: now + 60 }), { nowSeconds: now })).toMatchObject({ reason: 'forged' });
    expect(verifyToken(WS_SECRET, `${other}.${sig}`, { nowSeconds: now })).toMatchObject({ reason: 'forged' });
    expect(verifyToken(WS_SECRET, `${body}.${sig.slice(0, -2)}`, { nowSeconds: now })).toMatchObject({ reason: 'forged' });
    expect(verifyToken(WS_SECRET, good, { nowSeconds: now + 60 })).toMatchObject({ reason: 'expired' });
    expect(verifyToken(WS_SECRET, good, { nowSeconds: now + 59 })).toMatchObject({ ok: true });
    for (const bad of ['abc', 'a.b.c', `${body}.`, `.${sig}`, `${body}.${sig}!`, `${body}.${sig}.x`]) {
      expect(verifyToken(WS_SECRET, bad, { nowSeconds: now })).toMatchObject({ ok: false, reason: 'malformed' });
    }
    expect(verifyToken(WS_SECRET, '', { nowSeconds: now })).toMatchObject({ reason: 'missing' });
    expect(verifyToken(WS_SECRET, null, { nowSeconds: now })).toMatchObject({ reason: 'missing' });
    expect(verifyToken(undefined, good, { nowSeconds: now })).toMatchObject({ reason: 'no_secret' });
  });

  it('refuses a correctly signed token whose claims are not a user id and a number', () => {
    const sign = (claims: unknown) => {
      const b = Buffer.from(JSON.stringify(claims)).toString('base64url');
      return `${b}.${createHmac('sha256', WS_SECRET).update(b).digest('base64url')}`;
    };
    expect(verifyToken(WS_SECRET, sign({ user_id: 'a:b', exp: now + 60 }), { nowSeconds: now })).toMatchObject({ reason: 'malformed' });
    expect(verifyToken(WS_SECRET, sign({ user_id: 'alice', exp: String(now + 60) }), { nowSeconds: now })).toMatchObject({ reason: 'malformed' });
    expect(verifyToken(WS_SECRET, sign({ exp: now + 60 }), { nowSeconds: now })).toMatchObject({ reason: 'malformed' });
    expect(verifyToken(WS_SECRET, sign(['alice']), { nowSeconds: now })).toMatchObject({ reason: 'malformed' });
  });

  it('accepts what other languages sign: padded base64url and a fractional exp (taken down to the second)', () => {
    // Python: base64.urlsafe_b64encode pads; time.time() + 3600 is a float. The MAC is over the first part as sent.
    const body = Buffer.from(`{"user_id":"alice", "exp":${now + 60}.75}`).toString('base64');
    const padded = body.replaceAll('+', '-').replaceAll('/', '_');
    expect(padded).toMatch(/=$/);
    const sig = createHmac('sha256', WS_SECRET).update(padded).digest('base64').replaceAll('+', '-').replaceAll('/', '_');
    expect(sig).toMatch(/=$/);
    expect(verifyToken(WS_SECRET, `${padded}.${sig}`, { nowSeconds: now })).toEqual({ ok: true, claims: { userId: 'alice', exp: now + 60 } });
    expect(verifyToken(WS_SECRET, `${padded}.${sig}`, { nowSeconds: now + 60 })).toMatchObject({ reason: 'expired' });
    expect(verifyToken(WS_SECRET, `${padded}.${sig}==`, { nowSeconds: now })).toMatchObject({ reason: 'malformed' });
  });

  it('refuses exp that is not a positive number below 2^53, and exp beyond the lifetime ceiling', () => {
    const sign = (json: string) => {
      const b = Buffer.from(json).toString('base64url');
      return `${b}.${createHmac('sha256', WS_SECRET).update(b).digest('base64url')}`;
    };
    const opts = { nowSeconds: now, maxTtlSeconds: 3600 };
    for (const exp of ['1e300', '1e999', '-1', '0', `"${now + 60}"`, 'null', '[1]', '{}', `${2 ** 53 + 2}`]) {
      expect(verifyToken(WS_SECRET, sign(`{"user_id":"alice","exp":${exp}}`), opts), exp).toMatchObject({ ok: false });
    }
    expect(verifyToken(WS_SECRET, sign(`{"user_id":"alice","exp":${now + 3601}}`), opts)).toMatchObject({ reason: 'too_long' });
    expect(verifyToken(WS_SECRET, sign(`{"user_id":"alice","exp":${now + 3600}}`), opts)).toMatchObject({ ok: true });
    // A repeated query key arrives as an array: missing, not a crash.
    expect(verifyToken(WS_SECRET, ['a', 'b'], opts)).toMatchObject({ reason: 'missing' });
  });

  it('parses ttls', () => {
    expect([parseTtl('90s'), parseTtl('15m'), parseTtl('1h'), parseTtl('7d'), parseTtl('120')]).toEqual([90, 900, 3600, 604_800, 120]);
    expect([parseTtl('0'), parseTtl('1w'), parseTtl('-1h'), parseTtl('h')]).toEqual([null, null, null, null]);
  });
});

describe('tally token', () => {
  const run = (args: string[], env: Record<string, string>) =>
    spawnSync(process.execPath, [join(ROOT, 'bin', 'tally.mjs'), 'token', ...args], {
      env: { ...process.env, LOG_LEVEL: 'silent', ...env },
      encoding: 'utf8',
    });

  it('prints a token for --user with --ttl that the gateway accepts', () => {
    const before = Math.floor(Date.now() / 1000);
    const out = run(['--user', 'alice', '--ttl', '1h'], { TALLY_WS_SECRET: WS_SECRET });
    const after = Math.ceil(Date.now() / 1000);
    expect(out.status).toBe(0);
    const check = verifyToken(parseEnv({ TALLY_WS_SECRET: WS_SECRET }).TALLY_WS_SECRET, out.stdout.trim());
    expect(check.ok).toBe(true);
    if (check.ok) {
      expect(check.claims.userId).toBe('alice');
      expect(check.claims.exp).toBeGreaterThanOrEqual(before + 3600);
      expect(check.claims.exp).toBeLessThanOrEqual(after + 3600);
    }
  });

  it('refuses a ttl beyond TALLY_WS_MAX_TTL_SECONDS (default 7 days)', () => {
    expect(run(['--user', 'alice', '--ttl', '8d'], { TALLY_WS_SECRET: WS_SECRET }).status).toBe(2);
    const over = run(['--user', 'alice', '--ttl', '61'], { TALLY_WS_SECRET: WS_SECRET, TALLY_WS_MAX_TTL_SECONDS: '60' });
    expect(over.status).toBe(2);
    expect(over.stderr).toContain('TALLY_WS_MAX_TTL_SECONDS');
    expect(run(['--user', 'alice', '--ttl', '1m'], { TALLY_WS_SECRET: WS_SECRET, TALLY_WS_MAX_TTL_SECONDS: '60' }).status).toBe(0);
  });

  it('is a usage error without --user, with a bad ttl, or without TALLY_WS_SECRET', () => {
    expect(run(['--ttl', '1h'], { TALLY_WS_SECRET: WS_SECRET }).status).toBe(2);
    expect(run(['--user', 'alice', '--ttl', 'soon'], { TALLY_WS_SECRET: WS_SECRET }).status).toBe(2);
    expect(run(['--user', 'alice'], { TALLY_WS_SECRET: '' }).status).toBe(2);
  });
});
