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

function presented(req: FastifyRequest): { bearer?: string; basic?: { user: string; password: string } } {
  const header = req.headers.authorization;
  if (!header) return {};
  const [scheme, value = ''] = header.split(' ', 2);
  if (scheme?.toLowerCase() === 'bearer') return { bearer: value.trim() };
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i >= 0) return { basic: { user: decoded.slice(0, i), password: decoded.slice(i + 1) } };
  }
  return {};
}

/**
 * Bearer auth, CONTRACT §4: missing or wrong token → 401; the API token on an admin route → 403.
 * The admin token is accepted everywhere. `allowBasic` lets a browser log in (user `admin`, admin token).
 */
export function authorize(tokens: Tokens, role: Role, opts: { allowBasic?: boolean } = {}) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const p = presented(req);
    let secret = p.bearer;
    if (secret === undefined && opts.allowBasic && p.basic && safeEqual(p.basic.user, 'admin')) secret = p.basic.password;
    const isAdmin = secret !== undefined && tokens.admin !== undefined && safeEqual(secret, tokens.admin);
    const isApi = secret !== undefined && tokens.api !== undefined && safeEqual(secret, tokens.api);
    if (isAdmin || (role === 'api' && isApi)) return;
    if (opts.allowBasic) reply.header('WWW-Authenticate', 'Basic realm="tally admin", charset="UTF-8"');
    if (isApi) throw new HttpError(403, 'forbidden', 'this route needs the admin token');
    throw new HttpError(401, 'unauthorized', secret === undefined ? 'missing bearer token' : 'invalid token');
  };
}
