import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertOutbox } from '../src/ledger/sql/outbox.ts';
import { createLogger } from '../src/log.ts';
import { outboxCommitted } from '../src/outbox/after-commit.ts';
import { userChannel } from '../src/push/message.ts';
import { pushMetrics } from '../src/push/metrics.ts';
import { createPublisher, relayOutbox, startFastPath } from '../src/push/relay.ts';
import { createWorld, REDIS_URL, type TestWorld } from './helpers/env.ts';
import { waitFor } from './helpers/tally.ts';

/** A Redis nobody listens on: commands to it fail, the way they do during an outage. */
const DEAD_REDIS = 'redis://127.0.0.1:1';

let world: TestWorld;
let publisher: ReturnType<typeof createPublisher>;
let subscriber: Redis;
const received: { channel: string; msg: any }[] = [];

beforeAll(async () => {
  world = await createWorld();
  publisher = createPublisher(REDIS_URL);
  subscriber = new Redis(REDIS_URL);
  await subscriber.psubscribe(`${world.env.TALLY_PREFIX}:push:user:*`);
  subscriber.on('pmessage', (_p: string, channel: string, raw: string) => received.push({ channel, msg: JSON.parse(raw) }));
});
afterAll(async () => {
  await publisher?.quit();
  await subscriber?.quit();
  await world?.drop();
});

const unrelayed = async () => Number((await world.sql`SELECT count(*) AS n FROM outbox WHERE relayed_at IS NULL`)[0]!.n);

describe('outbox relay', () => {
  it('publishes every unrelayed row once, in outbox order, on its user channel, and marks it relayed', async () => {
    await world.sql.begin((tx) =>
      insertOutbox(tx, [
        { user_id: 'r-a', type: 'balance_changed', data: { asset: 'points', balance: 1, transaction_id: '1' } },
        { user_id: 'r-b', type: 'balance_changed', data: { asset: 'points', balance: 2, transaction_id: '2' } },
        { user_id: 'r-a', type: 'balance_changed', data: { asset: 'points', balance: 3, transaction_id: '3' } },
      ]),
    );
    const deps = { sql: world.sql, publisher, prefix: world.env.TALLY_PREFIX };
    expect(await relayOutbox(deps, 2, 10)).toEqual({ relayed: 3, sequenced: 3, batches: 2, more: false });
    await waitFor('3 published', async () => received.length >= 3);
    const chA = userChannel(world.env.TALLY_PREFIX, 'r-a');
    expect(received.filter((r) => r.channel === chA).map((r) => r.msg.data.balance)).toEqual([1, 3]);
    expect(received.map((r) => r.msg.id)).toEqual([...new Set(received.map((r) => r.msg.id))]);
    expect(await unrelayed()).toBe(0);
    expect(await relayOutbox(deps)).toEqual({ relayed: 0, sequenced: 0, batches: 1, more: false });
  });

  it('stops after its batch budget and says there is more', async () => {
    await world.sql.begin((tx) =>
      insertOutbox(tx, Array.from({ length: 5 }, (_, i) => ({ user_id: 'r-c', type: 'balance_changed' as const, data: { balance: i } }))),
    );
    const deps = { sql: world.sql, publisher, prefix: world.env.TALLY_PREFIX };
    expect(await relayOutbox(deps, 2, 2)).toEqual({ relayed: 4, sequenced: 4, batches: 2, more: true });
    expect(await unrelayed()).toBe(1);
    expect(await relayOutbox(deps, 2, 2)).toMatchObject({ relayed: 1, more: false });
  });

  it('a publish that fails leaves its rows unrelayed for the next run (nothing lost)', async () => {
    await world.sql.begin((tx) => insertOutbox(tx, [{ user_id: 'r-d', type: 'level_down', data: { device_id: 'd', old_level: 2, new_level: 1 } }]));
    const broken = createPublisher(DEAD_REDIS);
    broken.on('error', () => {});
    try {
      await expect(relayOutbox({ sql: world.sql, publisher: broken, prefix: world.env.TALLY_PREFIX })).rejects.toThrow();
    } finally {
      broken.disconnect();
    }
    expect(await unrelayed()).toBe(1);
    const before = received.length;
    expect(await relayOutbox({ sql: world.sql, publisher, prefix: world.env.TALLY_PREFIX })).toMatchObject({ relayed: 1 });
    await waitFor('republished', async () => received.length > before);
    expect(received.at(-1)!.msg).toMatchObject({ type: 'level_down', data: { device_id: 'd' } });
  });

  it('the fast path is fire-and-forget: an enqueue that fails is counted, never thrown at the committer', async () => {
    const deadRedis = new Redis(DEAD_REDIS, { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true, retryStrategy: () => null });
    deadRedis.on('error', () => {});
    const queue = new Queue('push-fanout', { connection: deadRedis, prefix: world.env.TALLY_PREFIX });
    queue.on('error', () => {});
    const failures = async () => (await pushMetrics.enqueueFailures.get()).values[0]?.value ?? 0;
    const before = await failures();
    const stop = startFastPath(queue, createLogger('silent'));
    try {
      const t = performance.now();
      for (let i = 0; i < 100; i++) outboxCommitted(1);
      expect(performance.now() - t).toBeLessThan(50);
      await waitFor('enqueue failure counted', async () => (await failures()) > before, 10_000);
      // One enqueue in flight at a time: 100 notifications are not 100 failed enqueues.
      expect((await failures()) - before).toBeLessThanOrEqual(2);
    } finally {
      stop();
      await queue.close().catch(() => {});
      deadRedis.disconnect();
    }
  });
});
