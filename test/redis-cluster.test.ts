import '../src/modules.ts'; // every feature module, as the CLI loads them (push gateway, money, affinity)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClusterUrl } from '../src/redis.ts';
import { EnvError, parseEnv } from '../src/config/env.ts';
import { REDIS_URL } from './helpers/env.ts';
import { TallyProducer } from '../src/producers/index.ts';
import { createWorld, uniqueName, type TestWorld } from './helpers/env.ts';
import { startLocalCluster, type LocalCluster } from './helpers/redis-cluster.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';
import { connectClient } from './helpers/ws-client.ts';

describe('REDIS_URL naming a cluster', () => {
  it('several nodes are a cluster; one node (or anything else) is not', () => {
    expect(parseClusterUrl('redis://10.0.0.1:7000,10.0.0.2:7001')).toEqual({
      nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }], username: undefined, password: undefined, tls: false,
    });
    expect(parseClusterUrl('rediss://app:s%40cret@a:7000,b')).toEqual({
      nodes: [{ host: 'a', port: 7000 }, { host: 'b', port: 6379 }], username: 'app', password: 's@cret', tls: true,
    });
    expect(parseClusterUrl('redis://127.0.0.1:6379')).toBeNull();
    expect(parseClusterUrl('redis://a:7000,b:notaport')).toBeNull();
    expect(parseClusterUrl('http://a:1,b:2')).toBeNull();
  });

  it('a cluster needs a hash-tagged prefix: refused at start and by the producer SDK, with the fix in the message', () => {
    const cluster = 'redis://127.0.0.1:7000,127.0.0.1:7001';
    expect(() => parseEnv({ REDIS_URL: cluster, TALLY_PREFIX: 'tally' })).toThrow(EnvError);
    expect(() => parseEnv({ REDIS_URL: cluster, TALLY_PREFIX: 'tally' })).toThrow(/TALLY_PREFIX: .*hash tag, e\.g\. \{tally\}/);
    expect(parseEnv({ REDIS_URL: cluster, TALLY_PREFIX: '{tally}' }).REDIS_URL).toBe(cluster);
    expect(() => parseEnv({ REDIS_URL: 'not a url' })).toThrow(/REDIS_URL/);
    expect(() => new TallyProducer({ redis: cluster })).toThrow(/hash tag, e\.g\. "\{tally\}"/);
  });
});

describe('TallyProducer.close()', () => {
  it('ends a wait for a job result at once instead of leaving its timer behind', async () => {
    const producer = new TallyProducer({ redis: REDIS_URL, prefix: uniqueName('pc') });
    const job = await producer.queue('grants').add('grant', { any: 'thing' }, { jobId: uniqueName('w') }); // no worker: never finishes
    const waiting = producer.result('grants', job, 60_000).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await producer.queue('grants').obliterate({ force: true });
    await producer.close();
    const err = await waiting;
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(String((err as Error).message)).toMatch(/producer closed/);
  });
});

describe('tally on a Redis Cluster (three local masters, hash-tagged prefix)', () => {
  let cluster: LocalCluster;
  let world: TestWorld;
  let tally: InProcessTally;
  let producer: TallyProducer;
  const prefix = `{${uniqueName('tc')}}`;

  beforeAll(async () => {
    cluster = await startLocalCluster();
    world = await createWorld({ REDIS_URL: cluster.url, TALLY_PREFIX: prefix });
    await world.applyExampleConfig();
    tally = await startTally(world, ['api', 'worker', 'scheduler']);
    producer = new TallyProducer({ redis: cluster.url, prefix });
  }, 60_000);
  afterAll(async () => {
    await producer?.close();
    await tally?.stop();
    await world?.drop();
    await cluster?.stop();
  });

  it('applies grants and charges exactly once, reads them back, and pushes them over the WebSocket', async () => {
    const client = await connectClient(tally.base, 'cl-ann');
    try {
      const grant = { event_id: uniqueName('g'), user_id: 'cl-ann', asset: 'points', amount: 100, source: 'recharge' };
      expect(await producer.grant(grant, { wait: true })).toMatchObject({ outcome: 'applied', balance_after: 100 });
      const charge = { event_id: uniqueName('c'), user_id: 'cl-ann', asset: 'points', source_type: 'script', source_id: 's1', policy: 'guarded' as const };
      expect(await producer.charge(charge, { wait: true })).toMatchObject({ outcome: 'applied', amount: 5, balance_after: 95 });
      await producer.queue('charges').remove(charge.event_id); // forgotten by BullMQ, remembered by PostgreSQL
      expect(await producer.charge(charge, { wait: true })).toMatchObject({ outcome: 'noop_duplicate' });
      const bad = await producer.queue('charges').add('charge', { ...charge, event_id: uniqueName('bad'), asset: 'nope' }, { jobId: uniqueName('bad') });
      await expect(producer.result('charges', bad)).rejects.toThrow(/^invalid_payload/);

      expect((await tally.http('GET', '/v1/users/cl-ann/balances/points')).body).toMatchObject({ balance: 95 });
      const pushed = await client.waitFor(2, (m) => m.type === 'balance_changed');
      expect(pushed.map((m) => m.data.balance)).toEqual([100, 95]);
      expect((await tally.http('GET', '/healthz', undefined, null)).body).toMatchObject({ status: 'ok', redis: 'ok' });
    } finally {
      client.close();
    }
  });

  it('keeps every key of the prefix in one slot (BullMQ scripts touch several keys at once)', async () => {
    const keys: string[] = [];
    for (const port of cluster.ports) {
      const { Redis } = await import('ioredis');
      const node = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
      await node.connect();
      keys.push(...(await node.keys(`${prefix}*`)));
      node.disconnect();
    }
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => k.startsWith(`${prefix}:`))).toBe(true);
  });
});
