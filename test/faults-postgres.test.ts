import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Sql } from '../src/db/client.ts';
import { TallyProducer } from '../src/producers/index.ts';
import { PG_BASE, REDIS_URL, createWorld, type TestWorld } from './helpers/env.ts';
import { decided, enqueueDrain, expectDrainedExactlyOnce, untilDecided } from './helpers/drain.ts';
import { startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

/**
 * Issue 10 item 12 (b), and item 11: every PostgreSQL backend of tally's database is terminated three times during
 * a 3,000-charge drain. The process survives every time (postgres.js once died of a null-socket TypeError here),
 * every job completes, every event takes effect exactly once, /healthz is ok without restarting tally, reconcile
 * is clean.
 */
let world: TestWorld;
let tally: InProcessTally;
let producer: TallyProducer;
let admin: postgres.Sql;
/** The test's own view of the database, under another name than tally's: the terminations spare it. */
let monitor: Sql;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  // Small batches: more transactions in flight, on more connections, when the backends die.
  tally = await startTally(world, ['api', 'worker', 'scheduler'], { TALLY_BATCH_MAX: '50', TALLY_WORKER_CONCURRENCY: '200' });
  producer = new TallyProducer({ redis: REDIS_URL, prefix: world.env.TALLY_PREFIX });
  // Not named 'tally': the terminations spare it.
  admin = postgres(`${PG_BASE}/postgres`, { max: 1, onnotice: () => {}, connection: { application_name: 'tally-test-admin' } });
  monitor = createDb(`${PG_BASE}/${world.dbName}`, { max: 2, applicationName: 'tally-test-monitor' });
});
afterAll(async () => {
  await producer?.close();
  await tally?.stop();
  await admin?.end({ timeout: 5 });
  await monitor?.end({ timeout: 5 });
  await world?.drop();
});

/** Terminates every backend of the test database that tally opened (its pool: workers, api, relays). */
async function terminateTallyBackends(): Promise<number> {
  const rows = await admin<{ ok: boolean }[]>`
    SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = ${world.dbName} AND application_name = 'tally'`;
  return rows.filter((r) => r.ok).length;
}

describe('every PostgreSQL backend terminated, three times, mid-drain', () => {
  it('tally rides it out: every job completes, every event once, health ok, reconcile clean', async () => {
    const drain = await enqueueDrain(producer, 'pk', 60, 3_000);
    const total = drain.eventIds.length;
    const kills: { at: number; backends: number }[] = [];
    for (const at of [0.15, 0.4, 0.65]) {
      const before = await untilDecided(monitor, drain, Math.floor(total * at));
      kills.push({ at: before, backends: await terminateTallyBackends() });
    }
    // Each termination hit a drain in progress, and hit tally's connections.
    for (const k of kills) {
      expect(k.at).toBeLessThan(total);
      expect(k.backends).toBeGreaterThan(0);
    }
    expect(await decided(monitor, drain).catch(() => 0)).toBeLessThanOrEqual(total);
    await expectDrainedExactlyOnce(monitor, producer, drain);
    const health = await waitFor('/healthz 200', async () => {
      const r = await tally.http('GET', '/healthz', undefined, null);
      return r.status === 200 ? r : undefined;
    }, 20_000, 100);
    expect(health.body).toEqual({ status: 'ok', postgres: 'ok', redis: 'ok' });
  }, 180_000);
});
