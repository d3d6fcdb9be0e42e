// The committed, ordered outbox feed (docs/push.md "The feed"): what resume and every other outbox consumer
// (the webhook dispatcher of issue 12) read, and how pruning respects each consumer's cursor.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDb, type Sql } from '../src/db/client.ts';
import { insertOutbox } from '../src/ledger/sql/outbox.ts';
import { onFeedSequenced } from '../src/push/feed.ts';
import { feedChannel } from '../src/push/message.ts';
import { createPublisher, relayOutbox, type RelayDeps } from '../src/push/relay.ts';
import { advanceFeedCursor, dropFeedConsumer, feedCursor, registerFeedConsumer } from '../src/push/sql/feed-cursors.ts';
import { laggingConsumers, pruneOutbox } from '../src/push/sql/prune-outbox.ts';
import { feedBounds, readCommittedFeed } from '../src/push/sql/read-feed.ts';
import { createWorld, REDIS_URL, type TestWorld } from './helpers/env.ts';
import { waitFor } from './helpers/tally.ts';

let world: TestWorld;
let writers: Sql;
let deps: RelayDeps;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  world = await createWorld();
  writers = createDb(world.env.DATABASE_URL, { max: 12 });
  deps = { sql: world.sql, publisher: createPublisher(REDIS_URL), prefix: world.env.TALLY_PREFIX };
});
beforeEach(async () => {
  await world.sql`DELETE FROM outbox_cursors`;
});
afterAll(async () => {
  await deps?.publisher.quit();
  await writers?.end({ timeout: 5 });
  await world?.drop();
});

const write = (key: string, user = 'f-u') =>
  writers.begin((tx) => insertOutbox(tx, [{ user_id: user, type: 'balance_changed', data: { key } }]));

describe('readCommittedFeed', () => {
  it('a consumer with a cursor gets the late-committing row (smaller outbox id) after the ones it already read', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inserted!: () => void;
    const t1Inserted = new Promise<void>((r) => (inserted = r));
    const t1 = writers.begin(async (tx) => {
      await insertOutbox(tx, [{ user_id: 'f-late', type: 'alert', data: { key: 't1', kind: 'low_balance', asset: 'credits' } }]);
      inserted();
      await gate;
    });
    await t1Inserted;
    await write('t2', 'f-late');
    await relayOutbox(deps);
    let cursor = (await feedBounds(world.sql)).head - 1n;
    const first = await readCommittedFeed(world.sql, cursor, 100);
    expect(first.map((e) => e.data.key)).toEqual(['t2']); // t1 is not committed: not in the feed, and no seq held for it
    cursor = first.at(-1)!.seq;
    release();
    await t1;
    await relayOutbox(deps);
    const next = await readCommittedFeed(world.sql, cursor, 100);
    expect(next.map((e) => [e.data.key, e.type])).toEqual([['t1', 'alert']]);
    expect(next[0]!.seq).toBe(cursor + 1n); // no gap, no seq reserved for a transaction still running
  });

  it('randomized: concurrent writers (some held open), concurrent relays, a polling consumer — every row once, in seq order, no gaps', async () => {
    for (let round = 0; round < 3; round++) {
      const start = (await feedBounds(world.sql)).head;
      const keys = new Set<string>();
      let writing = true;
      const seen: { seq: bigint; key: string }[] = [];
      let cursor = start;
      const consumer = (async () => {
        for (;;) {
          const done = !writing;
          const page = await readCommittedFeed(world.sql, cursor, 37);
          for (const e of page) seen.push({ seq: e.seq, key: e.data.key as string });
          if (page.length > 0) cursor = page.at(-1)!.seq;
          if (done && page.length === 0 && seen.length >= keys.size) return;
          if (page.length === 0) await sleep(Math.random() * 5);
        }
      })();
      const relays = Array.from({ length: 3 }, async () => {
        while (writing) {
          await relayOutbox(deps, 1 + Math.floor(Math.random() * 20), 3);
          await sleep(Math.random() * 4);
        }
      });
      await Promise.all(
        Array.from({ length: 10 }, async (_, w) => {
          for (let i = 0; i < 30; i++) {
            const key = `r${round}-w${w}-${i}`;
            const rows = 1 + Math.floor(Math.random() * 3);
            await writers.begin(async (tx) => {
              await insertOutbox(tx, Array.from({ length: rows }, (_, k) => ({ user_id: `f-${w % 3}`, type: 'balance_changed' as const, data: { key: `${key}.${k}` } })));
              if (Math.random() < 0.4) await sleep(Math.random() * 10);
            });
            for (let k = 0; k < rows; k++) keys.add(`${key}.${k}`);
          }
        }),
      );
      writing = false;
      await Promise.all(relays);
      await relayOutbox(deps); // whatever the last writes left
      await consumer;
      expect(seen.map((s) => s.key).sort()).toEqual([...keys].sort());
      expect(seen.map((s) => s.seq)).toEqual(seen.map((_, i) => start + BigInt(i + 1)));
    }
  });
});

describe('feed consumers and pruning', () => {
  async function publishedAndAged(n: number, tag: string): Promise<bigint[]> {
    for (let i = 0; i < n; i++) await write(`${tag}${i}`, 'f-prune');
    await relayOutbox(deps);
    const rows = await world.sql<{ seq: bigint }[]>`SELECT seq FROM outbox WHERE data->>'key' LIKE ${`${tag}%`} ORDER BY seq`;
    await world.sql`UPDATE outbox SET relayed_at = now() - interval '3 days' WHERE relayed_at IS NOT NULL`;
    return rows.map((r) => r.seq);
  }

  it('outbox-prune never deletes a row a registered consumer has not passed, and reports who holds it back', async () => {
    const at = await registerFeedConsumer(world.sql, 'webhooks');
    expect(await registerFeedConsumer(world.sql, 'webhooks')).toBe(at); // idempotent
    const seqs = await publishedAndAged(5, 'p');
    expect(seqs[0]).toBeGreaterThan(at);
    expect(await pruneOutbox(world.sql, 24)).toBeGreaterThanOrEqual(0);
    expect((await readCommittedFeed(world.sql, at, 100)).map((e) => e.seq)).toEqual(seqs); // all kept for it
    expect(await laggingConsumers(world.sql)).toEqual([{ consumer: 'webhooks', position: String(at), behind: 5 }]);

    await advanceFeedCursor(world.sql, 'webhooks', seqs[2]!);
    await advanceFeedCursor(world.sql, 'webhooks', seqs[0]!); // never rewinds
    expect(await feedCursor(world.sql, 'webhooks')).toBe(seqs[2]);
    await pruneOutbox(world.sql, 24);
    expect((await readCommittedFeed(world.sql, 0n, 100)).map((e) => e.seq)).toEqual(seqs.slice(3));
    expect((await feedBounds(world.sql)).pruned).toBe(seqs[2]);

    // A second consumer further behind holds for both; dropping it releases.
    await world.sql`INSERT INTO outbox_cursors (consumer, position) VALUES ('audit', ${seqs[2]!})`;
    await advanceFeedCursor(world.sql, 'webhooks', seqs[4]!);
    await pruneOutbox(world.sql, 24);
    expect((await readCommittedFeed(world.sql, 0n, 100)).map((e) => e.seq)).toEqual(seqs.slice(3));
    expect(await dropFeedConsumer(world.sql, 'audit')).toBe(true);
    await pruneOutbox(world.sql, 24);
    expect(await readCommittedFeed(world.sql, 0n, 100)).toEqual([]);
  });

  it('prunes only a prefix of the feed, and never a row not yet published', async () => {
    const seqs = await publishedAndAged(3, 'q');
    // The middle row is young: it and everything after it stay, even the old one behind it.
    await world.sql`UPDATE outbox SET relayed_at = now() WHERE seq = ${seqs[1]!}`;
    await write('q-unpublished', 'f-prune');
    await pruneOutbox(world.sql, 24);
    const left = await world.sql<{ key: string }[]>`SELECT data->>'key' AS key FROM outbox WHERE user_id = 'f-prune' ORDER BY outbox_id`;
    expect(left.map((r) => r.key)).toEqual(['q1', 'q2', 'q-unpublished']);
    expect((await feedBounds(world.sql)).pruned).toBe(seqs[0]);
  });

  it('refuses consumer names outside a plain charset', async () => {
    await expect(registerFeedConsumer(world.sql, 'Bad Name!')).rejects.toThrow();
  });
});

describe('wake-ups for consumers', () => {
  it('the relay calls onFeedSequenced with the new head and publishes it on the feed channel', async () => {
    const sub = new Redis(REDIS_URL);
    const heard: string[] = [];
    const heads: bigint[] = [];
    const stop = onFeedSequenced((h) => heads.push(h));
    try {
      await sub.subscribe(feedChannel(world.env.TALLY_PREFIX));
      sub.on('message', (_c: string, m: string) => heard.push(m));
      await write('wake', 'f-wake');
      await relayOutbox(deps);
      const head = (await feedBounds(world.sql)).head;
      expect(heads.at(-1)).toBe(head);
      await waitFor('feed hint', async () => heard.includes(String(head)), 5_000);
    } finally {
      stop();
      await sub.quit();
    }
  });
});
