import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/modules.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

/**
 * A producer in another language can store any JSON as a job's data — 10,000 levels deep too, which Node's own
 * JSON.stringify would not even write. The worker must refuse it as bad input (fail at once, kept, dead-lettered),
 * not blow its stack or retry for ever.
 */
let world: TestWorld;
let tally: InProcessTally;
beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

describe('job data 10,000 levels deep, written as raw JSON', () => {
  for (const [queue, type] of [['grants', 'batch'], ['charges', 'charge'], ['affinity-events', 'affinity.event']] as const) {
    it(`${queue}: fails at once as invalid_payload and the worker goes on`, async () => {
      const q = tally.producer.queue(queue);
      await q.pause();
      const jobId = `deep-${queue}`;
      await q.add(type, { type, event_id: jobId }, { jobId });
      const deep = `${'{"d":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
      const raw = `{"type":"${type}","event_id":"${jobId}","metadata":${deep},"events":[${deep}]}`;
      const redis = await (tally.producer as unknown as { redis: { hset(k: string, f: string, v: string): Promise<number> } }).redis;
      await redis.hset(q.toKey(jobId), 'data', raw);
      await q.resume();
      const err = await tally.producer.result(queue, (await q.getJob(jobId))!, 30_000).then(() => null, (e: Error) => e);
      expect(err?.message).toMatch(/^invalid_payload/);
      expect((await q.getJob(jobId))!.attemptsMade).toBeLessThanOrEqual(1);
      // The worker is alive: the next job of the queue is applied.
      if (queue === 'grants') {
        expect(await tally.producer.grant({ event_id: 'after-deep', user_id: 'ud', asset: 'points', amount: 1, source: 'gift' }, { wait: true })).toMatchObject({ outcome: 'applied' });
      }
    });
  }
});
