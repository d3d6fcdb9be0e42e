import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/ops/register.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { startProxy, type FaultProxy } from './helpers/proxy.ts';
import { startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;
// A TCP proxy in front of the shared Redis: cutting it makes Redis unreachable for this tally alone.
let proxy: FaultProxy;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  proxy = await startProxy(6379);
  tally = await startTally(world, ['api'], { REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
});
afterAll(async () => {
  await proxy?.restore().catch(() => {}); // let the clients say goodbye
  await tally?.stop();
  await proxy?.close();
  await world?.drop();
});

describe('/healthz and /readyz follow the dependencies', () => {
  it('answers ok while PostgreSQL and Redis answer', async () => {
    const r = await tally.http('GET', '/healthz', undefined, null);
    expect({ status: r.status, body: r.body }).toEqual({ status: 200, body: { status: 'ok', postgres: 'ok', redis: 'ok' } });
  });

  it('fails with 503 naming Redis while Redis is unreachable, and recovers when it is back', async () => {
    await proxy.cut();
    const down = await tally.http('GET', '/healthz', undefined, null);
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ status: 'error', postgres: 'ok', redis: expect.stringMatching(/^error/) });
    const ready = await tally.http('GET', '/readyz', undefined, null);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ status: 'not_ready', postgres: 'ok', redis: expect.stringMatching(/^error/) });
    // /metrics still answers, marking what it could not read.
    const metrics = await fetch(`${tally.base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/tally_scrape_error\{part="queues"\} 1/);

    await proxy.restore();
    const back = await waitFor('Redis to be reachable again', async () => {
      const r = await tally.http('GET', '/healthz', undefined, null);
      return r.status === 200 ? r : undefined;
    }, 20_000, 250);
    expect(back.body).toEqual({ status: 'ok', postgres: 'ok', redis: 'ok' });
  });

  it('an API process started while Redis is unreachable comes up, answers 503 naming Redis, and recovers when it is back', async () => {
    // It used to wait at start for Redis (the eviction-policy check) and never opened its port: a restart loop with
    // nothing to diagnose, where PostgreSQL down at start gives a process that answers 503 naming it.
    const away = await startProxy(6379);
    await away.cut();
    const t = await startTally(world, ['api'], { REDIS_URL: `redis://127.0.0.1:${away.port}` });
    try {
      const down = await t.http('GET', '/healthz', undefined, null);
      expect(down.status).toBe(503);
      expect(down.body).toMatchObject({ status: 'error', postgres: 'ok', redis: expect.stringMatching(/^error/) });
      await away.restore();
      await waitFor('Redis to be reachable', async () => (await t.http('GET', '/healthz', undefined, null)).status === 200, 20_000, 250);
    } finally {
      await away.restore().catch(() => {});
      await t.stop();
      await away.close();
    }
  });

  it('fails with 503 naming PostgreSQL when its database is gone', async () => {
    const other = await createWorld();
    const t = await startTally(other, ['api']);
    try {
      // Cut this tally's connections and make the database refuse new ones.
      await world.sql`ALTER DATABASE ${world.sql(other.dbName)} WITH ALLOW_CONNECTIONS false`;
      await world.sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${other.dbName}`;
      const r = await t.http('GET', '/healthz', undefined, null);
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ status: 'error', postgres: expect.stringMatching(/^error/), redis: 'ok' });
    } finally {
      await world.sql`ALTER DATABASE ${world.sql(other.dbName)} WITH ALLOW_CONNECTIONS true`;
      await t.stop();
      await other.drop();
    }
  });
});
