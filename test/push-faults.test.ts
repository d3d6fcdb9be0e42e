// Push under attack and faults: a Redis restart under 100 connected clients, a token expiring mid-burst,
// a client reconnecting in a loop with stale and forged `since` values.
import '../src/modules.ts';
import { createServer } from 'node:http';
import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Sql } from '../src/db/client.ts';
import { insertOutbox } from '../src/ledger/sql/outbox.ts';
import { outboxCommitted } from '../src/outbox/after-commit.ts';
import { createLogger } from '../src/log.ts';
import { PushGateway } from '../src/push/gateway.ts';
import { userChannel } from '../src/push/message.ts';
import { gateways } from '../src/push/routes.ts';
import { pushSettings } from '../src/push/settings.ts';
import { feedBounds } from '../src/push/sql/read-feed.ts';
import { createWorld, REDIS_URL, WS_SECRET, type TestWorld } from './helpers/env.ts';
import { startPrivateRedis, type PrivateRedis } from './helpers/push-private-redis.ts';
import { ResumingClient } from './helpers/resuming-client.ts';
import { startTally, waitFor, type InProcessTally } from './helpers/tally.ts';
import { connectClient, tokenFor, type PushClient } from './helpers/ws-client.ts';

let world: TestWorld;
let writers: Sql;
const resuming: ResumingClient[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function commit(user: string, key: string) {
  await writers.begin((tx) => insertOutbox(tx, [{ user_id: user, type: 'balance_changed', data: { key, user } }]));
  outboxCommitted(1);
}

/** Writes round-robin over `users` until stopped; returns what it wrote, by user. */
function startWriter(users: string[], tag: string, pauseMs = 2) {
  const written = new Map<string, string[]>(users.map((u) => [u, []]));
  let on = true;
  const done = (async () => {
    for (let i = 0; on; i++) {
      const user = users[i % users.length]!;
      const key = `${tag}${i}`;
      await commit(user, key);
      written.get(user)!.push(key);
      await sleep(pauseMs);
    }
  })();
  return {
    written,
    async stop() {
      on = false;
      await done;
    },
  };
}

async function expectComplete(clients: ResumingClient[], written: Map<string, string[]>, timeoutMs = 30_000) {
  for (const r of clients) {
    const mine = written.get(r.userId)!;
    await waitFor(`${r.userId} has all ${mine.length}`, async () => r.keys().length >= mine.length, timeoutMs);
  }
  await sleep(300);
  for (const r of clients) {
    expect(r.keys().sort(), r.userId).toEqual([...written.get(r.userId)!].sort());
    expect(r.violations, r.userId).toEqual([]);
  }
}

beforeAll(async () => {
  Object.assign(pushSettings, { heartbeatMs: 300, sweepEveryMs: 400 });
  world = await createWorld();
  writers = createDb(world.env.DATABASE_URL, { max: 6 });
});
afterEach(async () => {
  await Promise.all(resuming.splice(0).map((r) => r.stop()));
});
afterAll(async () => {
  await writers?.end({ timeout: 5 });
  await world?.drop();
});

describe('a Redis restart with 100 clients connected', () => {
  let redis: PrivateRedis;
  let tally: InProcessTally;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    tally = await startTally(world, ['api', 'worker', 'scheduler'], { REDIS_URL: redis.url });
  });
  afterAll(async () => {
    await tally?.stop();
    await redis?.stop();
  });

  it('every socket closes with 4001, clients resume with since, and each gets every event of its user exactly once', async () => {
    const users = Array.from({ length: 20 }, (_, i) => `fr-${i}`);
    const since = `ob-${(await feedBounds(world.sql)).head}`;
    for (const u of users) for (let k = 0; k < 5; k++) resuming.push(new ResumingClient(() => tally.base, u, { since }));
    await Promise.all(resuming.map((r) => r.start()));
    expect([...gateways][0]!.connections).toBe(100);

    const writer = startWriter(users, 'r', 3);
    await sleep(300);
    await redis.kill();
    await waitFor('all 100 sockets closed with 4001', async () => resuming.every((r) => r.closeCodes.includes(4001)), 10_000);
    await sleep(700); // clients keep retrying against a gateway that has no Redis
    await redis.start();
    const restarted = performance.now();
    await sleep(500);
    await writer.stop();

    await expectComplete(resuming, writer.written);
    const caughtUp = performance.now() - restarted;
    expect(resuming.every((r) => r.resyncs === 0)).toBe(true);
    await waitFor('100 sockets open again', async () => [...gateways][0]!.connections === 100, 10_000);
    expect([...gateways][0]!.subscribedUsers).toBe(20);
    const events = [...writer.written.values()].reduce((n, k) => n + k.length, 0);
    console.log(`Redis restart: 100 clients had all ${events} events ${caughtUp.toFixed(0)} ms after Redis came back (writes went on for 500 ms of it); refusals while down: ${resuming.reduce((n, r) => n + r.refusals, 0)}`);
  });
});

describe('with the shared Redis', () => {
  let tally: InProcessTally;
  beforeAll(async () => {
    tally = await startTally(world);
  });
  afterAll(async () => {
    await tally?.stop();
  });

  it('a token expiring mid-burst closes with 4003; a fresh token with since gets the rest, nothing missed', async () => {
    let first = true;
    const since = `ob-${(await feedBounds(world.sql)).head}`;
    const client = new ResumingClient(() => tally.base, 'fx-exp', {
      since,
      connect: () => {
        const ttlSeconds = first ? 2 : 3600;
        first = false;
        return { ttlSeconds };
      },
    });
    resuming.push(client);
    await client.start();
    const writer = startWriter(['fx-exp'], 'e', 5);
    await waitFor('closed by expiry', async () => client.closeCodes.includes(4003), 6_000);
    await sleep(300);
    await writer.stop();
    await expectComplete([client], writer.written);
    expect(client.sessions.length).toBeGreaterThanOrEqual(2);
  });

  it('a client reconnecting in a loop with stale and forged since values gets resync or its own events, never another user’s, and leaks nothing', async () => {
    const since = `ob-${(await feedBounds(world.sql)).head}`;
    const honest = new ResumingClient(() => tally.base, 'fx-victim', { since });
    resuming.push(honest);
    await honest.start();
    const writer = startWriter(['fx-victim', 'fx-attacker'], 'f', 2);
    const head = () => feedBounds(world.sql).then((b) => b.head);
    const forged = async (): Promise<string> => {
      const h = await head();
      const pick = [
        () => `ob-${h + 1n + BigInt(Math.floor(Math.random() * 1e6))}`, // the future
        () => `ob-${BigInt(Math.floor(Math.random() * Number(h + 1n)))}`, // any past position (other users' ids)
        () => 'ob-0',
        () => `ob-${'9'.repeat(19)}`,
        () => `ob-${'9'.repeat(30)}`,
        () => ['', 'ob-', 'ob--5', 'ob-1.5', 'ob-0x10', 'OB-5', ' ob-5', 'ob-5 ', '%00', '__proto__', '{}', 'null'][Math.floor(Math.random() * 12)]!,
      ];
      return pick[Math.floor(Math.random() * pick.length)]!();
    };
    const attacker: string[] = [];
    let replayed = 0;
    const t0 = performance.now();
    for (let i = 0; i < 150; i++) {
      // A few at once, as a reconnect loop in several tabs would.
      const batch = await Promise.all(
        Array.from({ length: 3 }, async () => {
          const c = await connectClient(tally.base, 'fx-attacker', { since: await forged() }).catch(() => null);
          if (!c) return null;
          await Promise.race([c.waitFor(1, undefined, 2_000).catch(() => []), sleep(30)]);
          c.ws.terminate();
          return c;
        }),
      );
      for (const c of batch.filter((x): x is PushClient => x !== null)) {
        for (const m of c.messages) {
          attacker.push(m.type);
          if (m.type !== 'resync') {
            replayed++;
            expect(m.data.user).toBe('fx-attacker'); // a forged position never yields another user's events
          }
        }
        if (c.messages.length > 0 && c.messages[0]!.type === 'resync') expect(c.messages.slice(1).every((m) => m.type !== 'resync')).toBe(true);
      }
    }
    const elapsed = performance.now() - t0;
    await writer.stop();
    await expectComplete([honest], new Map([['fx-victim', writer.written.get('fx-victim')!]]));
    expect(honest.sessions).toHaveLength(1); // never disturbed
    expect(attacker.filter((t) => t === 'resync').length).toBeGreaterThan(50);
    expect(replayed).toBeGreaterThan(0);
    await waitFor('attacker sockets gone', async () => [...gateways][0]!.connections === 1, 10_000);
    expect([...gateways][0]!.subscribedUsers).toBe(1);
    console.log(`450 hostile resumes in ${elapsed.toFixed(0)} ms`);
  });

  it('more sockets than the per-user cap at once: the oldest are closed (4008), the honest client resumes, nothing missed', async () => {
    const since = `ob-${(await feedBounds(world.sql)).head}`;
    const honest = new ResumingClient(() => tally.base, 'fx-crowd', { since });
    resuming.push(honest);
    await honest.start();
    const writer = startWriter(['fx-crowd'], 'g', 3);
    // 25 sockets with the same (stolen) token at once: the cap is 20 across the deployment.
    const token = tokenFor('fx-crowd');
    const crowd = await Promise.all(Array.from({ length: 25 }, () => connectClient(tally.base, 'fx-crowd', { token }).catch(() => null)));
    await waitFor('honest closed with 4008', async () => honest.closeCodes.includes(4008), 5_000);
    await sleep(300);
    const open = crowd.filter((c) => c && !c.closed).length;
    expect(open).toBeLessThanOrEqual(20);
    for (const c of crowd) c?.ws.terminate();
    await writer.stop();
    await expectComplete([honest], writer.written);
  });
});

/** A TCP proxy whose established connections can go silent (no data, no FIN, no RST): a half-open network path. */
async function silentableProxy(targetPort: number) {
  const pairs: { frozen: boolean }[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { frozen: false };
    pairs.push(pair);
    sockets.add(client).add(upstream);
    client.on('data', (d) => pair.frozen || upstream.write(d));
    upstream.on('data', (d) => pair.frozen || client.write(d));
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    /** Every connection open now stops passing data; new ones work. */
    silence: () => pairs.forEach((p) => (p.frozen = true)),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('a half-open fan-out subscription (no data, no error)', () => {
  it('is detected by the subscription PING and its sockets are closed with 4001', async () => {
    const proxy = await silentableProxy(new URL(REDIS_URL).port ? Number(new URL(REDIS_URL).port) : 6379);
    const prefix = `${world.env.TALLY_PREFIX}-ho`;
    const gw = new PushGateway({
      redisUrl: `redis://127.0.0.1:${proxy.port}`,
      prefix,
      secret: WS_SECRET,
      sql: world.sql,
      log: createLogger('silent'),
      settings: { ...pushSettings, heartbeatMs: 200, subscriberTimeoutMs: 800 },
      limits: { maxTtlSeconds: 3600, maxPerUser: 20, maxConnections: 100 },
    });
    const server = createServer();
    gw.attach(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const pub = new Redis(REDIS_URL);
    try {
      const msg = (n: number) => JSON.stringify({ id: `ob-${n}`, type: 'balance_changed', ts: new Date().toISOString(), data: { n } });
      const c = await connectClient(base, 'ho-user');
      await pub.publish(userChannel(prefix, 'ho-user'), msg(1));
      await c.waitFor(1);
      proxy.silence();
      const t0 = Date.now();
      expect(await c.waitClosed(10_000)).toBe(4001);
      expect(Date.now() - t0).toBeLessThan(5_000);
      // The gateway reconnects (a new connection through the proxy works) and takes sockets again.
      const again = await waitFor('reconnected', async () => connectClient(base, 'ho-user').catch(() => undefined), 15_000, 100);
      await pub.publish(userChannel(prefix, 'ho-user'), msg(2));
      const [m] = await again.waitFor(1);
      expect(m!.data.n).toBe(2);
      again.ws.terminate();
    } finally {
      await pub.quit();
      await gw.close();
      server.close();
      await proxy.close();
    }
  });
});
