import { EventEmitter } from 'node:events';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TallyProducer } from '../src/producers/index.ts';
import { REDIS_URL, uniqueName } from './helpers/env.ts';

describe('TallyProducer.result()', () => {
  const prefix = uniqueName('tt');
  const queueName = 'charges';
  let producer: TallyProducer;
  let redis: Redis;
  let worker: Worker;
  beforeAll(async () => {
    producer = new TallyProducer({ redis: REDIS_URL, prefix });
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    // A worker processing by hand, so the test decides the very moment a job completes.
    worker = new Worker(queueName, null, { connection: redis, prefix });
  });
  afterAll(async () => {
    await worker.close();
    await producer.close();
    await redis.quit();
  });

  it('answers the return value of a job that completes between the poll reading the job and its state', async () => {
    const queue = producer.queue(queueName);
    const job = await queue.add('charge', { event_id: 'race-1' }, { jobId: 'race-1' });
    const token = 'manual-token';
    const active = await worker.getNextJob(token);
    expect(active?.id).toBe('race-1');
    // The poll's reads, with the job completing right after the first of them (what a busy worker does at any moment).
    const getJob = queue.getJob.bind(queue);
    let completedOnce = false;
    queue.getJob = async (id: string) => {
      const read = await getJob(id);
      if (!completedOnce) {
        completedOnce = true;
        await active!.moveToCompleted({ outcome: 'applied', amount: 7 }, token, false);
      }
      return read;
    };
    const getJobState = queue.getJobState.bind(queue);
    queue.getJobState = async (id: string) => {
      const state = await getJobState(id);
      if (!completedOnce) {
        completedOnce = true;
        await active!.moveToCompleted({ outcome: 'applied', amount: 7 }, token, false);
      }
      return state;
    };
    // The completion event is missed, as it is when a QueueEvents connection is not reading yet: only the poll can tell.
    (producer as unknown as { queueEvents: () => Promise<EventEmitter> }).queueEvents = async () => new EventEmitter();
    try {
      await expect(producer.result(queueName, job, 10_000)).resolves.toEqual({ outcome: 'applied', amount: 7 });
    } finally {
      queue.getJob = getJob;
      queue.getJobState = getJobState;
    }
  });
});
