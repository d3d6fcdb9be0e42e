import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TallyProducer } from '../src/producers/index.ts';
import { createRedis, type RedisClient } from '../src/redis.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { decided, enqueueDrain, expectDrainedExactlyOnce, untilDecided } from './helpers/drain.ts';
import { startLocalRedis, type LocalRedis } from './helpers/redis-server.ts';
import { startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

/**
 * Issue 10 item 12 (a): tally's own redis-server (AOF on) is killed with SIGKILL and restarted, twice, in the middle
 * of a drain. Every job completes, every event takes effect exactly once, /healthz goes 503 and comes back without
 * restarting tally, and reconcile is clean.
 */
let world: TestWorld;
let redis: LocalRedis;
let tally: InProcessTally;
let producer: TallyProducer;
let client: RedisClient;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  redis = await startLocalRedis({ aof: true });
  // A short job lock, so jobs whose completion was lost with Redis come back (stalled) in seconds, not 30 s.
  tally = await startTally(world, ['api', 'worker', 'scheduler'], { REDIS_URL: redis.url, TALLY_LOCK_DURATION_MS: '5000', TALLY_BATCH_MAX: '100' });
  // The test's own client, quiet about the outages it causes (tally's clients log theirs).
  client = createRedis(redis.url);
  client.on('error', () => {});
  producer = new TallyProducer({ redis: client, prefix: world.env.TALLY_PREFIX });
});
afterAll(async () => {
  await producer?.close();
  client?.disconnect();
  await tally?.stop();
  await redis?.stop();
  await world?.drop();
});

const health = async () => (await tally.http('GET', '/healthz', undefined, null).catch(() => ({ status: 0, body: null }))).status;

describe('Redis killed (SIGKILL) and restarted mid-drain, with AOF', () => {
  it('every job completes, every event once, health recovers, reconcile clean', async () => {
    const drain = await enqueueDrain(producer, 'rk', 40, 2_000);
    const total = drain.eventIds.length;
    for (const at of [0.2, 0.55]) {
      const before = await untilDecided(world.sql, drain, Math.floor(total * at));
      await redis.kill9();
      expect(before, 'killed mid-drain').toBeLessThan(total);
      // While Redis is gone: /healthz says so (and answers: it does not hang).
      await waitFor('/healthz 503', async () => (await health()) === 503, 15_000, 100);
      await new Promise((r) => setTimeout(r, 500));
      await redis.start();
      // The same tally, not restarted, is healthy again.
      await waitFor('/healthz 200', async () => (await health()) === 200, 30_000, 100);
    }
    expect(await decided(world.sql, drain)).toBeLessThanOrEqual(total);
    await expectDrainedExactlyOnce(world.sql, producer, drain);
  }, 180_000);
});

describe('Redis killed and restarted WITHOUT AOF mid-drain', () => {
  it('loses the jobs not yet applied, never an applied event: replaying every event applies each exactly once; the schedules come back', async () => {
    const bare = await startLocalRedis({ aof: false });
    // Few jobs in a worker's hands at a time: most of the backlog is only in Redis when it dies.
    const t = await startTally(world, ['api', 'worker', 'scheduler'], { REDIS_URL: bare.url, TALLY_LOCK_DURATION_MS: '5000', TALLY_BATCH_MAX: '20', TALLY_WORKER_CONCURRENCY: '20', TALLY_SCHEDULE_CHECK_MS: '500' });
    const c = createRedis(bare.url);
    c.on('error', () => {});
    const p = new TallyProducer({ redis: c, prefix: world.env.TALLY_PREFIX });
    try {
      const drain = await enqueueDrain(p, 'rn', 20, 1_000);
      const total = drain.eventIds.length;
      expect((await p.queue('maintenance').getJobSchedulers()).length).toBeGreaterThan(0);
      await untilDecided(world.sql, drain, Math.floor(total * 0.3));
      await bare.kill9();
      await bare.start(); // empty: every queued job, and the maintenance schedules, are gone
      await waitFor('/healthz 200', async () => (await t.http('GET', '/healthz', undefined, null)).status === 200, 30_000, 100);
      const applied = await decided(world.sql, drain);
      expect(applied).toBeLessThan(total); // work was lost…
      // …and the schedules, which the running scheduler puts back within TALLY_SCHEDULE_CHECK_MS.
      const back = await waitFor('schedules restored', async () => ((await p.queue('maintenance').getJobSchedulers()).length > 0 ? true : undefined), 15_000, 100);
      expect(back).toBe(true);
      // The producers' remedy: send every event again (jobId = event_id; the applied ones answer noop_duplicate).
      await enqueueDrain(p, 'rn', 20, 1_000);
      await expectDrainedExactlyOnce(world.sql, p, drain);
    } finally {
      await p.close();
      c.disconnect();
      await t.stop();
      await bare.stop();
    }
  }, 180_000);
});
