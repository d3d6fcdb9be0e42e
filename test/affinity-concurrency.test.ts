import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/affinity/register.ts';
import { TallyProducer } from '../src/producers/index.ts';
import { AFFINITY_TEST_CONFIG } from './helpers/affinity-config.ts';
import { REDIS_URL, createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { spawnTally, waitFor } from './helpers/tally.ts';

let world: TestWorld;
let producer: TallyProducer;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  world = await createWorld({ TALLY_LOCK_DURATION_MS: '3000' }); // a killed worker's jobs come back in seconds
  await world.applyConfig(AFFINITY_TEST_CONFIG);
  producer = new TallyProducer({ redis: REDIS_URL, prefix: world.env.TALLY_PREFIX });
});
/** SIGTERM every worker still running (graceful: in-flight batches finish) and wait for them to exit. */
async function stopWorkers(): Promise<void> {
  await Promise.all(
    workers.splice(0).map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.exitCode !== null || w.signalCode !== null) return resolve();
          w.once('exit', () => resolve());
          w.kill('SIGTERM');
        }),
    ),
  );
}

afterAll(async () => {
  await stopWorkers();
  await producer?.close();
  await world?.drop();
});

/** Deterministic pseudo-random numbers, so a failure can be replayed. */
function rng(seed: number) {
  return () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
}

const COUNT = 500;
// Three natural days in Asia/Shanghai; every event of a day falls in its first 30 minutes, so chat events
// (cooldown 60 s) crowd each other and the caps are reached early.
const DAY_STARTS = ['2026-11-01T16:00:00Z', '2026-11-02T16:00:00Z', '2026-11-03T16:00:00Z'].map(Date.parse);
const RULES = ['chat', 'chat', 'gift', 'like', 'rude'];

describe('affinity under concurrency', () => {
  it('500 events on one device from 2 worker processes: exact score, counters, caps and cooldowns, nothing lost or doubled', async () => {
    const random = rng(42);
    const events = Array.from({ length: COUNT }, (_, i) => ({
      event_id: `hot-${i}`,
      user_id: 'hot-user',
      device_id: 'hot-device',
      rule_key: RULES[Math.floor(random() * RULES.length)]!,
      source: 'device',
      occurred_at: new Date(DAY_STARTS[i % 3]! + Math.floor(random() * 1800_000)).toISOString(),
      metadata: { units: 1 + Math.floor(random() * 4) },
    }));
    // Enqueued before the workers start, so both find a backlog and race for the one device.
    for (let i = 0; i < COUNT; i += 100) await producer.affinityEventBulk(events.slice(i, i + 100), { batch: false });
    for (let w = 0; w < 2; w++) workers.push(spawnTally(world, ['start', '--role', 'worker'], { TALLY_BATCH_MAX: '20', TALLY_WORKER_CONCURRENCY: '64' }));

    const queue = producer.queue('affinity-events');
    await waitFor('every event decided', async () => (await queue.getJobCounts('completed')).completed === COUNT, 120_000, 200);
    const counts = await queue.getJobCounts('completed', 'failed', 'waiting', 'active', 'delayed');
    expect(counts).toMatchObject({ completed: COUNT, failed: 0, waiting: 0, active: 0, delayed: 0 });

    // Replays after the jobs were removed: decided once, durably.
    for (const e of events.slice(0, 20)) await queue.remove(e.event_id);
    const replays: any[] = [];
    for (const e of events.slice(0, 20)) replays.push(await producer.affinityEvent(e, { wait: true }));
    expect(replays.every((r) => r.outcome === 'noop_duplicate')).toBe(true);

    const sql = world.sql;
    const [decided] = await sql`SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM processed_events WHERE queue = 'affinity-events'`;
    expect(decided).toEqual({ n: COUNT, d: COUNT });
    const [logged] = await sql`SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d, coalesce(sum(change), 0)::int AS total
                               FROM affinity_log WHERE user_id = 'hot-user'`;
    expect(logged!.n).toBe(logged!.d); // no event applied twice
    const applied = await sql`SELECT count(*)::int AS n FROM processed_events WHERE queue = 'affinity-events' AND outcome = 'applied'`;
    expect(logged!.n).toBe(applied[0]!.n);
    expect(logged!.n).toBeGreaterThan(20);

    const [device] = await sql`SELECT value FROM affinity_devices WHERE user_id = 'hot-user' AND device_id = 'hot-device'`;
    expect(device!.value).toBe(logged!.total); // score = Σ logged changes
    expect(device!.value).toBeGreaterThanOrEqual(0);
    expect(device!.value).toBeLessThanOrEqual(1000);

    // Each day's counters = Σ of its positive changes, and no cap is ever exceeded.
    const counters = await sql`SELECT day::text AS day, scope, positive_sum::int AS sum FROM affinity_daily WHERE user_id = 'hot-user' ORDER BY day, scope`;
    const fromLog = await sql`
      SELECT day::text AS day, s.scope, sum(change)::int AS sum
      FROM affinity_log, LATERAL (VALUES (rule_key), ('*')) AS s(scope)
      WHERE user_id = 'hot-user' AND kind = 'event' AND change > 0 GROUP BY day, s.scope ORDER BY day, s.scope`;
    expect(counters).toEqual(fromLog);
    expect(new Set(counters.map((c) => c.day))).toEqual(new Set(['2026-11-02', '2026-11-03', '2026-11-04']));
    const caps: Record<string, number> = { '*': 100, chat: 20, gift: 60 };
    for (const c of counters) if (caps[c.scope] !== undefined) expect(c.sum, `${c.day} ${c.scope}`).toBeLessThanOrEqual(caps[c.scope]!);
    expect(counters.filter((c) => c.scope === '*').every((c) => c.sum === 100)).toBe(true); // the backlog reaches it

    // Applied chat events are at least the cooldown apart, whatever order the workers took them in.
    const chats = await sql`SELECT occurred_at FROM affinity_log WHERE user_id = 'hot-user' AND rule_key = 'chat' ORDER BY occurred_at`;
    for (let i = 1; i < chats.length; i++) {
      expect(chats[i]!.occurred_at.getTime() - chats[i - 1]!.occurred_at.getTime()).toBeGreaterThanOrEqual(60_000);
    }

    // Levels crossed were rewarded once each (level 2 at 100, 3 at 150, 4 at 200 may be reached).
    const granted = await sql`SELECT level FROM affinity_granted_levels WHERE user_id = 'hot-user' ORDER BY level`;
    const maxValue = await sql`SELECT max(after)::int AS m FROM affinity_log WHERE user_id = 'hot-user'`;
    const expectedLevels = AFFINITY_TEST_CONFIG.affinity.levels.filter((l) => l.threshold > 0 && l.threshold <= maxValue[0]!.m).map((l) => l.level);
    expect(granted.map((g) => g.level)).toEqual(expectedLevels);
    await expectInvariants(sql);
    await stopWorkers();
  });

  it('a worker killed mid-drain (SIGKILL) loses nothing and applies nothing twice', async () => {
    const random = rng(7);
    const count = 300;
    const events = Array.from({ length: count }, (_, i) => ({
      event_id: `crash-${i}`,
      user_id: 'crash-user',
      device_id: 'crash-device',
      rule_key: RULES[Math.floor(random() * RULES.length)]!,
      source: 'device',
      occurred_at: new Date(DAY_STARTS[i % 3]! + Math.floor(random() * 1800_000)).toISOString(),
      metadata: { units: 1 + Math.floor(random() * 4) },
    }));
    // Slow the victim down (tiny batches) so the kill lands mid-drain.
    const victim = spawnTally(world, ['start', '--role', 'worker'], { TALLY_BATCH_MAX: '2', TALLY_BATCH_PARALLEL: '1', TALLY_WORKER_CONCURRENCY: '8' });
    workers.push(victim);
    for (let i = 0; i < count; i += 100) await producer.affinityEventBulk(events.slice(i, i + 100), { batch: false });
    const decidedCount = async () => (await world.sql`SELECT count(*)::int AS n FROM processed_events WHERE event_id LIKE 'crash-%'`)[0]!.n as number;
    await waitFor('some events decided', async () => (await decidedCount()) >= 20, 60_000, 20);
    await new Promise((r) => {
      victim.once('exit', r);
      victim.kill('SIGKILL');
    });
    expect(await decidedCount()).toBeLessThan(count);

    // Jobs the victim held come back through BullMQ's stalled check; the durable decisions make re-runs no-ops.
    workers.push(spawnTally(world, ['start', '--role', 'worker']));
    const queue = producer.queue('affinity-events');
    await waitFor('every crash event decided', async () => (await decidedCount()) === count && (await queue.getJobCounts('active', 'wait', 'delayed')).active === 0, 150_000, 250);
    const sql = world.sql;
    const [logged] = await sql`SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d, coalesce(sum(change), 0)::int AS total
                               FROM affinity_log WHERE user_id = 'crash-user'`;
    expect(logged!.n).toBe(logged!.d);
    const [applied] = await sql`SELECT count(*)::int AS n FROM processed_events WHERE event_id LIKE 'crash-%' AND outcome = 'applied'`;
    expect(logged!.n).toBe(applied!.n);
    const [device] = await sql`SELECT value FROM affinity_devices WHERE user_id = 'crash-user'`;
    expect(device!.value).toBe(logged!.total);
    expect(await queue.getFailedCount()).toBe(0);
    await expectInvariants(sql);
  }, 200_000);
});
