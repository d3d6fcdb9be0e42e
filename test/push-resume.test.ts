// Resume (issue 10 item 10, CONTRACT §5 v2): ?since=ID replays what the user missed, resync when it cannot,
// 4001 when the gateway loses its subscription — and a late-committing transaction is never skipped.
import '../src/modules.ts';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Sql } from '../src/db/client.ts';
import { insertOutbox } from '../src/ledger/sql/outbox.ts';
import { outboxCommitted } from '../src/outbox/after-commit.ts';
import { gateways } from '../src/push/routes.ts';
import { pushSettings } from '../src/push/settings.ts';
import { feedBounds } from '../src/push/sql/read-feed.ts';
import { ADMIN_TOKEN } from './helpers/tally.ts';
import { createWorld, REDIS_URL, type TestWorld } from './helpers/env.ts';
import { ResumingClient } from './helpers/resuming-client.ts';
import { startTally, waitFor, type InProcessTally } from './helpers/tally.ts';
import { connectClient, type ConnectOptions, type PushClient } from './helpers/ws-client.ts';

let world: TestWorld;
let tally: InProcessTally;
let writers: Sql;
const clients: PushClient[] = [];
const resuming: ResumingClient[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function connect(user: string, opts: ConnectOptions = {}) {
  const c = await connectClient(tally.base, user, opts);
  clients.push(c);
  return c;
}

/** An event written the way the ledger and affinity transactions write them, then the after-commit hook. */
async function commit(user: string, key: string) {
  await writers.begin((tx) => insertOutbox(tx, [{ user_id: user, type: 'balance_changed', data: { key, user } }]));
  outboxCommitted(1);
}

const headId = async () => `ob-${(await feedBounds(world.sql)).head}`;
const seqOf = (id: string) => BigInt(id.slice(3));

beforeAll(async () => {
  Object.assign(pushSettings, { heartbeatMs: 300, sweepEveryMs: 400 });
  world = await createWorld();
  tally = await startTally(world);
  writers = createDb(world.env.DATABASE_URL, { max: 12 });
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await Promise.all(resuming.splice(0).map((r) => r.stop()));
});
afterAll(async () => {
  await writers?.end({ timeout: 5 });
  await tally?.stop();
  await world?.drop();
});

describe('resume with ?since', () => {
  it('never skips an event whose transaction took the smaller outbox id but committed last', async () => {
    const live = await connect('rs-late');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inserted!: () => void;
    const t1Inserted = new Promise<void>((r) => (inserted = r));
    // T1 draws its outbox id first and holds its transaction open …
    const t1 = writers.begin(async (tx) => {
      await insertOutbox(tx, [{ user_id: 'rs-late', type: 'balance_changed', data: { key: 't1' } }]);
      inserted();
      await gate;
    });
    await t1Inserted;
    // … T2 draws a larger id and commits first; the client sees it live.
    await commit('rs-late', 't2');
    const [seenT2] = await live.waitFor(1);
    expect(seenT2!.data.key).toBe('t2');
    live.ws.terminate();
    // T1 commits while the client is away.
    release();
    await t1;
    outboxCommitted(1);
    const ids = await world.sql<{ key: string; outbox_id: bigint }[]>`SELECT data->>'key' AS key, outbox_id FROM outbox WHERE user_id = 'rs-late' ORDER BY outbox_id`;
    expect(ids.map((r) => r.key)).toEqual(['t1', 't2']); // the late one really has the smaller outbox id
    await waitFor('t1 sequenced', async () => (await world.sql`SELECT 1 FROM outbox WHERE data->>'key' = 't1' AND seq IS NOT NULL`).length > 0);

    const back = await connect('rs-late', { since: seenT2!.id });
    const [replayed] = await back.waitFor(1);
    expect(replayed!.data.key).toBe('t1');
    expect(seqOf(replayed!.id)).toBeGreaterThan(seqOf(seenT2!.id));
    await sleep(300);
    expect(back.messages.map((m) => m.data.key)).toEqual(['t1']);
  });

  it('replays what was missed in order, then goes live on the same socket without gap or repeat', async () => {
    const first = await connect('rs-gap');
    for (let i = 0; i < 5; i++) await commit('rs-gap', `a${i}`);
    await first.waitFor(5);
    const since = first.messages.at(-1)!.id;
    first.ws.terminate();
    for (let i = 0; i < 40; i++) await commit('rs-gap', `b${i}`);
    await commit('rs-other', 'not-yours');
    const back = await connect('rs-gap', { since });
    const more = Promise.all(Array.from({ length: 20 }, (_, i) => commit('rs-gap', `c${i}`)));
    await more;
    const got = await back.waitFor(60);
    await sleep(300);
    expect(back.messages).toHaveLength(60);
    const keys = back.messages.map((m) => m.data.key);
    expect(keys.slice(0, 40)).toEqual(Array.from({ length: 40 }, (_, i) => `b${i}`));
    expect(new Set(keys.slice(40))).toEqual(new Set(Array.from({ length: 20 }, (_, i) => `c${i}`)));
    const seqs = got.map((m) => seqOf(m.id));
    expect(seqs).toEqual([...seqs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it('answers resync first for a since it does not know (malformed, forged, from the future), then goes live', async () => {
    const head = (await feedBounds(world.sql)).head;
    for (const since of ['garbage', '', 'ob-', 'ob-01', 'ob--1', 'ob-1e3', '__proto__', `ob-${head + 1000n}`, 'ob-99999999999999999999', 'x'.repeat(4000)]) {
      const c = await connect('rs-unknown', { since });
      const [first] = await c.waitFor(1);
      expect(first, since.slice(0, 40)).toMatchObject({ type: 'resync', data: { reason: 'unknown_since' } });
      expect(first!.id).toMatch(/^ob-\d+$/);
      c.ws.terminate();
    }
    const c = await connect('rs-unknown', { since: 'nope' });
    await c.waitFor(1);
    await commit('rs-unknown', 'after-resync');
    const [, live] = await c.waitFor(2);
    expect(live!.data.key).toBe('after-resync');
    // The resync id is a cursor: resuming from it replays exactly what came after.
    c.ws.terminate();
    await commit('rs-unknown', 'while-away');
    const again = await connect('rs-unknown', { since: c.messages[0]!.id });
    const replay = await again.waitFor(2);
    expect(replay.map((m) => m.data.key)).toEqual(['after-resync', 'while-away']);
  });

  it('answers resync (since_pruned) for a since older than the retention, and replays from the pruned mark', async () => {
    for (let i = 0; i < 3; i++) await commit('rs-old', `old${i}`);
    await waitFor('published', async () => (await world.sql`SELECT 1 FROM outbox WHERE user_id = 'rs-old' AND relayed_at IS NOT NULL`).length === 3);
    const [row] = await world.sql<{ seq: bigint }[]>`SELECT min(seq) AS seq FROM outbox WHERE user_id = 'rs-old'`;
    const oldest = row!.seq;
    await world.sql`UPDATE outbox SET relayed_at = now() - interval '3 days' WHERE seq IS NOT NULL`;
    await commit('rs-old', 'fresh');
    const pruned = await tally.http('POST', '/v1/admin/maintenance/outbox-prune', undefined, ADMIN_TOKEN);
    expect(pruned.body.deleted).toBeGreaterThan(0);
    const bounds = await feedBounds(world.sql);
    expect(bounds.pruned).toBeGreaterThanOrEqual(oldest);

    const stale = await connect('rs-old', { since: `ob-${oldest - 1n}` });
    const [first] = await stale.waitFor(1);
    expect(first).toMatchObject({ type: 'resync', data: { reason: 'since_pruned' } });
    const fromMark = await connect('rs-old', { since: `ob-${bounds.pruned}` });
    const [replayed] = await fromMark.waitFor(1);
    expect(replayed!.data.key).toBe('fresh');
  });

  it('closes every socket with 4001 when the gateway loses its subscription; resuming clients miss nothing', async () => {
    const admin = new Redis(REDIS_URL);
    try {
      const since = await headId();
      const users = ['rs-k1', 'rs-k2', 'rs-k3'];
      for (const u of users) resuming.push(new ResumingClient(() => tally.base, u, { since }));
      await Promise.all(resuming.map((r) => r.start()));
      const written: string[] = [];
      let writing = true;
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          const key = `k${i}`;
          await commit(users[i % users.length]!, key);
          written.push(key);
          await sleep(2);
        }
      })();
      await sleep(200);
      // Kill exactly this gateway's subscriber connection (found by its name), as a network drop would.
      const name = `${world.env.TALLY_PREFIX}:push-subscriber`;
      const list = (await admin.client('LIST')) as string;
      const line = list.split('\n').find((l) => l.includes(` name=${name} `));
      expect(line).toBeDefined();
      await admin.client('KILL', 'ID', /id=(\d+)/.exec(line!)![1]!);
      await waitFor('every socket closed with 4001', async () => resuming.every((r) => r.closeCodes.includes(4001)), 10_000);
      await sleep(300);
      writing = false;
      await writer;
      for (const r of resuming) {
        const mine = written.filter((_, i) => users[i % users.length] === r.userId);
        await waitFor(`${r.userId} has all ${mine.length}`, async () => r.keys().length >= mine.length, 15_000);
        expect(r.keys().sort()).toEqual([...mine].sort());
        expect(r.violations).toEqual([]);
        expect(r.resyncs).toBe(0);
      }
      expect([...gateways][0]!.connections).toBe(users.length);
    } finally {
      await admin.quit();
    }
  });
});

describe('resume under concurrency (randomized)', () => {
  it('many concurrent writers, clients reconnecting with since at random points: every event exactly once, none missed', async () => {
    const users = ['rz-a', 'rz-b', 'rz-c', 'rz-d'];
    const WRITERS = 8;
    const PER_WRITER = 50;
    const written = new Map<string, string[]>(users.map((u) => [u, []]));
    const committedAt = new Map<string, number>();
    const latencies: number[] = [];
    const since = await headId();
    // One client per user that stays connected (latency, and exactly-once on a single socket) …
    const steady = users.map(
      (u) => new ResumingClient(() => tally.base, u, { since, onMessage: (m, at) => latencies.push(at - committedAt.get(m.data.key)!) }),
    );
    // … and one per user that drops its socket at random moments and resumes.
    const flaky = users.map((u) => new ResumingClient(() => tally.base, u, { since }));
    resuming.push(...steady, ...flaky);
    await Promise.all(resuming.map((r) => r.start()));
    let writing = true;
    let drops = 0;
    let writes = 0;
    const dropper = (async () => {
      while (writing) {
        await sleep(20 + Math.random() * 150);
        flaky[Math.floor(Math.random() * flaky.length)]!.drop();
        drops++;
      }
    })();
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        for (let i = 0; i < PER_WRITER; i++) {
          // Drops interleave with the writes whatever the machine's speed: at least one per 40 writes (a fast
          // machine once finished all 400 writes before the dropper's ninth drop, and the test saw too few resumes).
          while (drops < Math.floor(writes / 40)) await sleep(5);
          writes++;
          const user = users[Math.floor(Math.random() * users.length)]!;
          const key = `w${w}-${i}`;
          await writers.begin(async (tx) => {
            await insertOutbox(tx, [{ user_id: user, type: 'balance_changed', data: { key, user } }]);
            // Hold some transactions open after drawing their id, so smaller ids often commit later.
            if (Math.random() < 0.5) await sleep(Math.random() * 15);
          });
          committedAt.set(key, performance.now());
          written.get(user)!.push(key);
          outboxCommitted(1);
        }
      }),
    );
    writing = false;
    await dropper;
    for (const r of resuming) {
      const mine = written.get(r.userId)!;
      await waitFor(`${r.userId} has all ${mine.length}`, async () => r.keys().length >= mine.length, 20_000);
    }
    await sleep(300); // anything extra would show up now
    for (const r of resuming) {
      expect(r.keys().sort(), r.userId).toEqual([...written.get(r.userId)!].sort()); // each event once (deduped by id), none missed
      expect(r.violations, r.userId).toEqual([]);
      expect(r.resyncs).toBe(0);
    }
    for (const r of steady) expect(r.sessions).toHaveLength(1);
    expect(flaky.reduce((n, r) => n + r.sessions.length, 0)).toBeGreaterThan(8);
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(1);
    console.log(`push commit→receipt over ${latencies.length} live messages: p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${pct(1)} ms`);
  });
});
