// WebSocket limits (issue 10 item 5, CONTRACT §5 v2): token lifetime ceiling, expiry while connected,
// sockets per user and per process.
import '../src/modules.ts';
import { createHmac } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { gateways } from '../src/push/routes.ts';
import { pushSettings } from '../src/push/settings.ts';
import { createWorld, REDIS_URL, WS_SECRET, type TestWorld } from './helpers/env.ts';
import { startTally, waitFor, type InProcessTally } from './helpers/tally.ts';
import { connectClient, upgradeStatus, wsUrl, type ConnectOptions, type PushClient } from './helpers/ws-client.ts';

let world: TestWorld;
let tally: InProcessTally;
let redis: Redis;
const clients: PushClient[] = [];
const MAX_PER_USER = 3;
const MAX_CONNECTIONS = 8;

async function connect(user: string, opts: ConnectOptions = {}) {
  const c = await connectClient(tally.base, user, opts);
  clients.push(c);
  return c;
}

/** A token signed correctly over whatever claims JSON it is given (a hostile signer holding the secret's output). */
function signRaw(json: string): string {
  const body = Buffer.from(json).toString('base64url');
  return `${body}.${createHmac('sha256', WS_SECRET).update(body).digest('base64url')}`;
}

const gateway = () => [...gateways][0]!;

beforeAll(async () => {
  Object.assign(pushSettings, { heartbeatMs: 300, sweepEveryMs: 400 });
  world = await createWorld();
  tally = await startTally(world, ['api', 'worker', 'scheduler'], {
    TALLY_WS_MAX_PER_USER: String(MAX_PER_USER),
    TALLY_WS_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
  });
  redis = new Redis(REDIS_URL);
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await waitFor('sockets closed on the server', async () => gateway().connections === 0, 10_000);
});
afterAll(async () => {
  await redis?.quit();
  await tally?.stop();
  await world?.drop();
});

describe('token lifetime (TALLY_WS_MAX_TTL_SECONDS, default 604800)', () => {
  it('refuses with 401 before the upgrade: exp too far ahead, 1e300, negative, not a number, missing, huge', async () => {
    const now = Math.floor(Date.now() / 1000);
    const hostile = [
      `{"user_id":"l-u","exp":${now + 604_800 + 60}}`,
      '{"user_id":"l-u","exp":1e300}',
      '{"user_id":"l-u","exp":1e999}',
      '{"user_id":"l-u","exp":-5}',
      `{"user_id":"l-u","exp":"${now + 60}"}`,
      '{"user_id":"l-u","exp":"NaN"}',
      '{"user_id":"l-u","exp":null}',
      '{"user_id":"l-u"}',
      `{"__proto__":{"exp":${now + 60}},"user_id":"l-u"}`,
      `{"user_id":"l-u","exp":${now + 60},"pad":"${'x'.repeat(3_000)}"}`,
      `{"user_id":"${'u'.repeat(5000)}","exp":${now + 60}}`,
    ];
    for (const json of hostile) {
      const res = await upgradeStatus(wsUrl(tally.base, signRaw(json)));
      expect(res.status, json.slice(0, 80)).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'unauthorized' } });
    }
    // The plain-GET twin of the endpoint applies the same ceiling.
    const plain = await fetch(`${tally.base}/v1/stream?token=${encodeURIComponent(signRaw(hostile[0]!))}`);
    expect(plain.status).toBe(401);
    // Just inside the ceiling is fine.
    const ok = await connect('l-u', { token: signRaw(`{"user_id":"l-u","exp":${now + 604_800 - 5}}`) });
    expect(ok.ws.readyState).toBe(ok.ws.OPEN);
  });

  it('closes a socket with 4003 when its token expires, and not before', async () => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const short = await connect('l-exp', { token: signRaw(`{"user_id":"l-exp","exp":${exp}}`) });
    const long = await connect('l-exp');
    const code = await short.waitClosed(6_000);
    expect(code).toBe(4003);
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000 - 50);
    expect(long.closed).toBe(false);
  });
});

describe('sockets per user (TALLY_WS_MAX_PER_USER)', () => {
  it('a socket beyond the cap closes the user’s oldest with 4008; other users are untouched', async () => {
    const other = await connect('l-other');
    const first: PushClient[] = [];
    for (let i = 0; i < MAX_PER_USER; i++) first.push(await connect('l-many'));
    const fourth = await connect('l-many');
    expect(await first[0]!.waitClosed(5_000)).toBe(4008);
    const fifth = await connect('l-many');
    expect(await first[1]!.waitClosed(5_000)).toBe(4008);
    await new Promise((r) => setTimeout(r, 200));
    for (const c of [first[2]!, fourth, fifth, other]) expect(c.closed).toBe(false);
    const key = `${world.env.TALLY_PREFIX}:push:sockets:l-many`;
    await waitFor('slot set settles at the cap', async () => (await redis.zcard(key)) === MAX_PER_USER, 5_000);
    // Closing sockets frees their slots.
    for (const c of [first[2]!, fourth, fifth]) c.close();
    await waitFor('slots released', async () => (await redis.zcard(key)) === 0, 5_000);
  });
});

describe('sockets per process (TALLY_WS_MAX_CONNECTIONS)', () => {
  it('refuses upgrades beyond the cap with 503 and Retry-After, and takes them again once one closes', async () => {
    const open: PushClient[] = [];
    for (let i = 0; i < MAX_CONNECTIONS; i++) open.push(await connect(`l-cap-${i}`));
    const res = await upgradeStatus(wsUrl(tally.base, signRaw(`{"user_id":"l-cap-x","exp":${Math.floor(Date.now() / 1000) + 60}}`)));
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'over_capacity' } });
    expect(res.headers['retry-after']).toBeDefined();
    open[0]!.ws.terminate();
    await waitFor('one slot free', async () => gateway().connections < MAX_CONNECTIONS, 5_000);
    const again = await connect('l-cap-x');
    expect(again.ws.readyState).toBe(again.ws.OPEN);
  });
});
