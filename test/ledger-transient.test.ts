import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TallyProducer } from '../src/producers/index.ts';
import { createWorld, PG_BASE, REDIS_URL, type TestWorld } from './helpers/env.ts';
import { startProxy, type FaultProxy } from './helpers/proxy.ts';
import { startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let pgProxy: FaultProxy;
let tally: InProcessTally;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  pgProxy = await startProxy(Number(new URL(PG_BASE).port || 5432));
  tally = await startTally(world, ['worker'], { DATABASE_URL: `postgres://127.0.0.1:${pgProxy.port}/${world.dbName}` });
});
afterAll(async () => {
  await tally?.stop();
  await pgProxy?.close();
  await world?.drop();
});

describe('transient faults', () => {
  it('a job with attempts: 1 from a foreign producer survives a PostgreSQL outage and is applied once', async () => {
    const producer = new TallyProducer({ redis: REDIS_URL, prefix: world.env.TALLY_PREFIX });
    try {
      await producer.grant({ event_id: 'before-outage', user_id: 'olga', asset: 'points', amount: 5, source: 'gift' }, { wait: true });
      await pgProxy.cut();
      // Raw JSON as another language would enqueue it, with a single attempt.
      const job = await producer.queue('grants').add('grant', { type: 'grant', event_id: 'during-outage', user_id: 'olga', asset: 'points', amount: 7, source: 'gift' }, { jobId: 'during-outage', attempts: 1 });
      await new Promise((r) => setTimeout(r, 2500));
      expect(await job.getState()).not.toBe('failed');
      await pgProxy.restore();
      const state = await waitFor('job completed', async () => ((await job.getState()) === 'completed' ? 'completed' : false), 30_000, 100);
      expect(state).toBe('completed');
      const done = await producer.queue('grants').getJob('during-outage');
      expect(done!.returnvalue).toMatchObject({ outcome: 'applied', amount: 7, balance_after: 12 });
      expect(done!.attemptsMade).toBeLessThanOrEqual(1);
      const rows = await world.sql`SELECT count(*)::int AS n FROM ledger_entries WHERE event_id = 'during-outage'`;
      expect(rows[0]!.n).toBe(1);
    } finally {
      await producer.close();
    }
  });
});
