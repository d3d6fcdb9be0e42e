import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, API_TOKEN, createWorld, REDIS_URL, uniqueName, type TestWorld } from './helpers/env.ts';
import { expectErrorShape } from './helpers/error-shape.ts';
import { spawnTally, startTally, waitFor } from './helpers/tally.ts';

const LIMIT = 30;
let world: TestWorld;
const children: ChildProcess[] = [];
let a: string;
let b: string;

/** `tally start --role api` as its own process; its port is read from its start log. */
async function startApiProcess(extra: Record<string, string>): Promise<string> {
  const child = spawnTally(world, ['start', '--role', 'api'], { LOG_LEVEL: 'info', ...extra });
  children.push(child);
  let log = '';
  child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const port = await waitFor('an api process', async () => {
    for (const line of log.split('\n')) if (line.includes('"tally started"')) return (JSON.parse(line) as { port?: number }).port;
    if (child.exitCode !== null) throw new Error(`api process exited: ${log}`);
    return undefined;
  }, 60_000, 100);
  return `http://127.0.0.1:${port}`;
}

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  [a, b] = await Promise.all([startApiProcess({ TALLY_RATE_LIMIT_PER_MINUTE: String(LIMIT) }), startApiProcess({ TALLY_RATE_LIMIT_PER_MINUTE: String(LIMIT) })]);
});
afterAll(async () => {
  await Promise.all(
    children.map((c) => {
      if (c.exitCode !== null) return undefined;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      return exited;
    }),
  );
  await world?.drop();
});

const get = (base: string, path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { headers });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('rate limits shared across API processes (issue 10 item 7, contract v2 §1/§4)', () => {
  it('one token\'s budget is shared by two processes: a parallel flood gets exactly the limit through, the rest 429', async () => {
    const flood = await Promise.all(
      Array.from({ length: 2 * LIMIT }, (_, i) => get(i % 2 ? a : b, '/v1/users/rl/balances/points', bearer(API_TOKEN))),
    );
    const statuses = flood.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(LIMIT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(LIMIT);
    const refused = flood.find((r) => r.status === 429)!;
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers.get('x-ratelimit-limit')).toBe(String(LIMIT));
    const body = await refused.json();
    expectErrorShape(body);
    expect(body.error.code).toBe('rate_limited');
    expect(body.error.details).toMatchObject({ limit_per_minute: LIMIT });
  });

  it('/healthz, /readyz and /metrics stay exempt while the budget is spent; another token has its own budget', async () => {
    for (const base of [a, b]) {
      expect((await get(base, '/v1/users/rl/balances/points', bearer(API_TOKEN))).status).toBe(429);
      for (let i = 0; i < 3; i++) {
        expect((await get(base, '/healthz')).status).toBe(200);
        expect((await get(base, '/readyz')).status).toBe(200);
        expect((await get(base, '/metrics')).status).toBe(200);
      }
      expect((await get(base, '/v1/users/rl/balances/points', bearer(ADMIN_TOKEN))).status).toBe(200);
    }
  });

  it('without a valid token the budget is per client IP, and refusals count: token guessing is limited', async () => {
    const tries = await Promise.all(
      Array.from({ length: LIMIT + 10 }, (_, i) =>
        get(i % 2 ? a : b, '/v1/users/rl/balances/points', i % 3 ? bearer(randomBytes(16).toString('hex')) : {}),
      ),
    );
    const statuses = tries.map((r) => r.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(LIMIT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(10);
    // Without TALLY_TRUST_PROXY a forged X-Forwarded-For changes nothing.
    expect((await get(a, '/v1/users/rl/balances/points', { 'x-forwarded-for': '203.0.113.9' })).status).toBe(429);
  });

  it('keys are a hash of the token, never the token', async () => {
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await redis.keys(`${world.env.TALLY_PREFIX}:rate-limit:*`);
      expect(keys.length).toBeGreaterThanOrEqual(3);
      for (const k of keys) {
        expect(k).not.toContain(API_TOKEN);
        expect(k).not.toContain(ADMIN_TOKEN);
        expect(k).toMatch(/:rate-limit:(token:[A-Za-z0-9_-]{22}|ip:[0-9a-f.:]+)$/);
      }
    } finally {
      redis.disconnect();
    }
  });
});

describe('TALLY_RATE_LIMIT_PER_MINUTE=0 and TALLY_TRUST_PROXY', () => {
  it('0 turns the limit off', async () => {
    const t = await startTally(world, ['api'], { TALLY_RATE_LIMIT_PER_MINUTE: '0', TALLY_PREFIX: uniqueName('tt') });
    try {
      const statuses = await Promise.all(Array.from({ length: 50 }, () => get(t.base, '/v1/nothing').then((r) => r.status)));
      expect(new Set(statuses)).toEqual(new Set([404]));
      expect((await get(t.base, '/v1/nothing')).headers.get('x-ratelimit-limit')).toBeNull();
    } finally {
      await t.stop();
    }
  });

  it('behind a trusted proxy the client address comes from X-Forwarded-For (and only then)', async () => {
    const t = await startTally(world, ['api'], { TALLY_RATE_LIMIT_PER_MINUTE: '3', TALLY_TRUST_PROXY: '127.0.0.1', TALLY_PREFIX: uniqueName('tt') });
    try {
      const from = (ip: string) => get(t.base, '/v1/nothing', { 'x-forwarded-for': ip }).then((r) => r.status);
      expect([await from('198.51.100.1'), await from('198.51.100.1'), await from('198.51.100.1'), await from('198.51.100.1')]).toEqual([404, 404, 404, 429]);
      expect(await from('198.51.100.2')).toBe(404); // another client behind the same proxy
    } finally {
      await t.stop();
    }
  });
});
