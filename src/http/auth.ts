import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../errors.ts';

/** Constant-time comparison: both sides are hashed first so neither length nor content leaks through timing. */
export function safeEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export interface Tokens {
  api?: string;
  admin?: string;
}

export type Role = 'api' | 'admin';

/**
 * Who may call a route, declared in its options (`config: { auth: 'api' }`) and checked in `onRequest` — before
 * any byte of the body is read or parsed, so an unauthenticated request costs nothing but its headers.
 * - `api`: the API token (or the admin token); `admin`: the admin token only (the API token → 403);
 * - `public`: anyone (health, the OpenAPI document);
 * - `signed`: the route authenticates the request itself from the raw body (the payment callback's HMAC).
 * Every /v1 route must declare one: the server refuses to start otherwise.
 */
export type AuthMode = Role | 'public' | 'signed';

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthMode;
    /** Keep the exact request text for the handler (`rawBodyOf`): a signature is over the bytes, not the JSON. */
    rawBody?: boolean;
  }
  interface FastifyRequest {
    /** The valid credential this request presented, once the auth check ran (audit and rate limits use it). */
    credential: Credential | null;
  }
}

/** A valid credential: which token it is and how it came (Basic is the browser login to the admin pages). */
export interface Credential {
  role: Role;
  scheme: 'bearer' | 'basic';
  /** A short hash of the token: a stable key for rate limits that never reveals the token. */
  keyHash: string;
}

interface Presented {
  secret?: string;
  scheme?: 'bearer' | 'basic';
}

function presented(req: FastifyRequest, allowBasic: boolean): Presented {
  const header = req.headers.authorization;
  if (!header) return {};
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const value = space < 0 ? '' : header.slice(space + 1).trim();
  if (scheme === 'bearer') return { secret: value, scheme: 'bearer' };
  if (scheme === 'basic' && allowBasic) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i >= 0 && safeEqual(decoded.slice(0, i), 'admin')) return { secret: decoded.slice(i + 1), scheme: 'basic' };
  }
  return {};
}

function keyHash(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url').slice(0, 22);
}

/** The valid credential a request carries, if any (Basic only where a browser may log in). */
export function credentialOf(req: FastifyRequest, tokens: Tokens, allowBasic = false): Credential | null {
  const p = presented(req, allowBasic);
  if (!p.secret || !p.scheme) return null;
  if (tokens.admin !== undefined && safeEqual(p.secret, tokens.admin)) return { role: 'admin', scheme: p.scheme, keyHash: keyHash(p.secret) };
  if (tokens.api !== undefined && safeEqual(p.secret, tokens.api)) return { role: 'api', scheme: p.scheme, keyHash: keyHash(p.secret) };
  return null;
}

/** Checks one request against a role: returns nothing when it may pass, throws the 401/403 otherwise. */
export function check(req: FastifyRequest, tokens: Tokens, role: Role, allowBasic = false): void {
  const cred = credentialOf(req, tokens, allowBasic);
  req.credential = cred;
  if (cred && (cred.role === 'admin' || role === 'api')) return;
  if (cred) throw new HttpError(403, 'forbidden', 'this route needs the admin token');
  const sent = req.headers.authorization !== undefined;
  throw new HttpError(401, 'unauthorized', sent ? 'invalid token' : 'missing bearer token');
}

/**
 * Bearer auth as a hook, CONTRACT §4: missing or wrong token → 401; the API token on an admin route → 403.
 * The admin token is accepted everywhere. `allowBasic` lets a browser log in (user `admin`, admin token).
 * Use it as an `onRequest` hook, so the body is never read for a refused request.
 */
export function authorize(tokens: Tokens, role: Role, opts: { allowBasic?: boolean } = {}) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    try {
      check(req, tokens, role, opts.allowBasic);
    } catch (err) {
      if (opts.allowBasic && err instanceof HttpError && err.status === 401) {
        reply.header('WWW-Authenticate', 'Basic realm="tally admin", charset="UTF-8"');
      }
      throw err;
    }
  };
}
