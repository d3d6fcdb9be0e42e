import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Env } from '../config/env.ts';
import { HttpError } from '../errors.ts';
import { createRedis } from '../redis.ts';
import { credentialOf } from './auth.ts';

const READY_WAIT_MS = 3000;

function ready(redis: ReturnType<typeof createRedis>, ms: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    redis.once('ready', done);
  });
}

/** The rate limit's verdict on one request: throws the 429 (headers set) past the budget. */
export type RateGate = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;

/**
 * CONTRACT §1/§4: `TALLY_RATE_LIMIT_PER_MINUTE` requests per minute per token, per client IP for requests without
 * a valid token (so guessing tokens is limited per IP, not per guess), counted in Redis so every API process
 * shares one budget. @fastify/rate-limit with its Redis store (one Lua INCR+PEXPIRE per request): a fixed
 * one-minute window per key.
 *
 * The limiter has its own Redis connection that fails fast (no offline queue, a short command timeout): when
 * Redis is unreachable requests pass unlimited rather than wait — reads need only PostgreSQL, and /healthz
 * already says Redis is down.
 */
export async function registerRateLimit(app: FastifyInstance, env: Env): Promise<RateGate | null> {
  const max = env.TALLY_RATE_LIMIT_PER_MINUTE;
  if (max === 0) return null;
  const tokens = { api: env.TALLY_API_TOKEN, admin: env.TALLY_ADMIN_TOKEN };
  const redis = createRedis(env.REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 1000 });
  redis.on('error', () => {}); // /healthz reports Redis; the limiter just lets requests through meanwhile
  // Counting from the first request: without an offline queue, commands before the connection is ready would
  // fail (and pass unlimited). A Redis that is down at start is not waited for longer than this.
  await ready(redis, READY_WAIT_MS);
  app.addHook('onClose', async () => {
    await redis.quit().catch(() => redis.disconnect());
  });
  await app.register(rateLimit, {
    global: false, // applied by the server's onRequest gate, before auth: refusals count too
    max,
    timeWindow: 60_000,
    redis: redis as never,
    nameSpace: `${env.TALLY_PREFIX}:rate-limit:`,
    skipOnError: true,
    // Never the token itself: a hash of a valid one, else the client's address (TALLY_TRUST_PROXY decides which).
    keyGenerator: (req) => {
      const cred = credentialOf(req, tokens, true);
      return cred ? `token:${cred.keyHash}` : `ip:${req.ip}`;
    },
    errorResponseBuilder: (_req, c) =>
      new HttpError(429, 'rate_limited', `more than ${c.max} requests per minute; retry in ${c.after}`, {
        limit_per_minute: c.max,
        retry_after_seconds: Math.ceil(c.ttl / 1000),
      }),
  });
  return app.rateLimit() as RateGate;
}
