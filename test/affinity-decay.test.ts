import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDecay } from '../src/affinity/decay.ts';
import '../src/affinity/register.ts';
import { ConfigCache } from '../src/config/store.ts';
import { AFFINITY_TEST_CONFIG } from './helpers/affinity-config.ts';
import { ADMIN_TOKEN, createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { spawnTally, startTally, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;
let n = 0;
const id = (p: string) => `${p}-${++n}-${Date.now().toString(36)}`;
const DAY = 86_400_000;

beforeAll(async () => {
  world = await createWorld();
  await world.applyConfig(AFFINITY_TEST_CONFIG);
  // No scheduler role: a scheduled decay at the wall clock would decay the back-dated devices below mid-test.
  tally = await startTally(world, ['api', 'worker']);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

function adjust(user: string, device: string, delta: number) {
  return tally.producer.affinityAdjust({ event_id: id('adj'), user_id: user, device_id: device, delta, operator_id: 'ops', reason: 'test' }, { wait: true }) as Promise<any>;
}
async function value(user: string, device: string): Promise<number> {
  return (await tally.http('GET', `/v1/users/${user}/devices/${device}/affinity`)).body.value;
}

describe('decay', () => {
  it('idle devices lose per_day for each idle day beyond after_idle_days, once per day, and level down; regain grants nothing twice', async () => {
    const configs = new ConfigCache();
    const start = Date.now();
    expect(await adjust('u-decay', 'd1', 120)).toMatchObject({ after: 120, level_after: 2, rewards: [{ level: 2, amount: 50 }] });
    await adjust('u-fresh', 'd1', 50);

    // Nothing is due yet: 3 idle days are allowed.
    expect(await runDecay(world.sql, configs, { now: new Date(start + 3 * DAY) })).toMatchObject({ devices_decayed: 0 });
    expect(await value('u-decay', 'd1')).toBe(120);

    // Ten days later: the day of the adjust is D0, D1…D3 are free, D4…D9 have ended and decay, 6 × 5 = 30.
    // D10 has only begun: it is not charged (contract v2 §6).
    const later = new Date(start + 10 * DAY);
    const first = await runDecay(world.sql, configs, { now: later });
    expect(first).toMatchObject({ task: 'decay', devices_decayed: 2, amount_decayed: 30 + 30, level_downs: 1 });
    expect(await value('u-decay', 'd1')).toBe(90);
    expect(await value('u-fresh', 'd1')).toBe(20);
    const [log] = await world.sql`SELECT kind, source, change, before, after, level_before, level_after FROM affinity_log WHERE user_id = 'u-decay' AND kind = 'decay'`;
    expect(log).toEqual({ kind: 'decay', source: 'decay', change: -30, before: 120, after: 90, level_before: 2, level_after: 1 });
    const [down] = await world.sql`SELECT data FROM outbox WHERE user_id = 'u-decay' AND type = 'level_down'`;
    expect(down!.data).toEqual({ device_id: 'd1', old_level: 2, new_level: 1 });

    // The same day again: nothing changes.
    const logsBefore = await world.sql`SELECT count(*)::int AS n FROM affinity_log`;
    expect(await runDecay(world.sql, configs, { now: new Date(later.getTime() + 3600_000) })).toMatchObject({ devices_decayed: 0, amount_decayed: 0 });
    expect(await value('u-decay', 'd1')).toBe(90);
    expect((await world.sql`SELECT count(*)::int AS n FROM affinity_log`)[0]!.n).toBe(logsBefore[0]!.n);

    // One more day: one more day's decay (missed days would be caught up the same way).
    expect(await runDecay(world.sql, configs, { now: new Date(start + 11 * DAY) })).toMatchObject({ devices_decayed: 2, amount_decayed: 10 });
    expect(await value('u-decay', 'd1')).toBe(85);

    // Back above level 2: level_up, but its reward was granted once ever.
    expect(await adjust('u-decay', 'd1', 50)).toMatchObject({ after: 135, level_before: 1, level_after: 2, rewards: [] });
    expect((await tally.http('GET', '/v1/users/u-decay/balances/points')).body.balance).toBe(50);
    await expectInvariants(world.sql);
  });

  it('a device active recently is left alone by the real clock, over HTTP and the CLI', async () => {
    await adjust('u-active', 'd1', 30);
    const r = await tally.http('POST', '/v1/admin/maintenance/decay', undefined, (await import('./helpers/env.ts')).ADMIN_TOKEN);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ task: 'decay', devices_decayed: 0 });
    const child = spawnTally(world, ['maintenance', 'decay']);
    let out = '';
    child.stdout!.on('data', (b) => (out += b));
    const code = await new Promise((res) => child.on('exit', res));
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ task: 'decay', devices_decayed: 0 });
    expect(await value('u-active', 'd1')).toBe(30);
  });

});

describe('decay charges only days that have ended (contract v2 §6), in the affinity timezone', () => {
  const configs = new ConfigCache();
  const at = (iso: string) => new Date(iso);
  async function like(user: string, occurredAt: string) {
    const r = await tally.producer.affinityEvent({ event_id: id('like'), user_id: user, device_id: 'd1', rule_key: 'like', source: 'device', occurred_at: occurredAt }, { wait: true });
    expect(r).toMatchObject({ outcome: 'applied', after: 30 });
  }
  async function decays(user: string): Promise<number[]> {
    const rows = await world.sql`SELECT change FROM affinity_log WHERE user_id = ${user} AND kind = 'decay' ORDER BY log_id`;
    return rows.map((r) => r.change as number);
  }

  it('Asia/Shanghai: last event 03-01 23:50 → nothing until 03-05 has ended, 5 at 03-06 00:00, then 5 per ended day', async () => {
    await like('u-sh', '2026-03-01T15:50:00Z'); // 03-01 23:50 +08
    await runDecay(world.sql, configs, { now: at('2026-03-04T16:10:00Z') }); // 03-05 00:10 (the repro)
    // 03-05 23:59:59.999: 03-05 is the first chargeable day, but it has not ended — not even a candidate.
    expect(await runDecay(world.sql, configs, { now: at('2026-03-05T15:59:59.999Z') })).toMatchObject({ devices_checked: 0, devices_decayed: 0 });
    expect(await decays('u-sh')).toEqual([]);
    const first = await runDecay(world.sql, configs, { now: at('2026-03-05T16:00:00.000Z') }); // 03-06 00:00
    expect(first).toMatchObject({ today: '2026-03-06', through: '2026-03-05' });
    expect(await decays('u-sh')).toEqual([-5]);
    // Later that day the device is not even a candidate any more (the SQL filter agrees with decideDecay).
    expect(await runDecay(world.sql, configs, { now: at('2026-03-06T02:00:00Z') })).toMatchObject({ devices_checked: 0 });
    await runDecay(world.sql, configs, { now: at('2026-03-06T15:59:59.999Z') });
    expect(await decays('u-sh')).toEqual([-5]);
    await runDecay(world.sql, configs, { now: at('2026-03-06T16:00:00.000Z') });
    expect(await decays('u-sh')).toEqual([-5, -5]);
    const [device] = await world.sql`SELECT value, decayed_through::text AS through FROM affinity_devices WHERE user_id = 'u-sh'`;
    expect(device).toEqual({ value: 20, through: '2026-03-06' });
  });

  it('America/New_York: the 23-hour spring day and the 25-hour autumn day end at their local midnight', async () => {
    const ny = structuredClone(AFFINITY_TEST_CONFIG);
    ny.affinity.settings.timezone = 'America/New_York';
    await world.applyConfig(ny);
    try {
      // Spring: last event 03-04 23:50 EST; 03-05…03-07 free; 03-08 (23 h) is the fourth, ending 03-09 00:00 EDT = 04:00Z.
      await like('u-ny-spring', '2026-03-05T04:50:00Z');
      await runDecay(world.sql, configs, { now: at('2026-03-09T03:59:59.999Z') });
      expect(await decays('u-ny-spring')).toEqual([]);
      await runDecay(world.sql, configs, { now: at('2026-03-09T04:00:00.000Z') });
      expect(await decays('u-ny-spring')).toEqual([-5]);

      // Autumn: last event 10-28 23:50 EDT; 10-29…10-31 free; 11-01 (25 h) ends 11-02 00:00 EST = 05:00Z, not 04:00Z.
      await like('u-ny-autumn', '2026-10-29T03:50:00Z');
      await runDecay(world.sql, configs, { now: at('2026-11-02T04:00:00.000Z') });
      await runDecay(world.sql, configs, { now: at('2026-11-02T04:59:59.999Z') });
      expect(await decays('u-ny-autumn')).toEqual([]);
      await runDecay(world.sql, configs, { now: at('2026-11-02T05:00:00.000Z') });
      expect(await decays('u-ny-autumn')).toEqual([-5]);
    } finally {
      await world.applyConfig(AFFINITY_TEST_CONFIG);
    }
  });

  it('the scheduled task and the admin route decide by the business clock (tally_now)', async () => {
    await like('u-clock', '2026-04-01T15:50:00Z'); // 04-01 23:50 +08; the first decay is due 04-06 00:00 +08 = 04-05 16:00Z
    try {
      await world.clock.set(at('2026-04-05T15:59:00Z'));
      const before = await tally.http('POST', '/v1/admin/maintenance/decay', undefined, ADMIN_TOKEN);
      expect(before.body).toMatchObject({ task: 'decay', today: '2026-04-05' });
      expect(await decays('u-clock')).toEqual([]);
      await world.clock.set(at('2026-04-05T16:00:01Z'));
      const after = await tally.http('POST', '/v1/admin/maintenance/decay', undefined, ADMIN_TOKEN);
      expect(after.body).toMatchObject({ task: 'decay', today: '2026-04-06', through: '2026-04-05' });
      expect(await decays('u-clock')).toEqual([-5]);
    } finally {
      await world.clock.advance(-(await world.clock.offset()));
    }
    await expectInvariants(world.sql);
  });
});

describe('decay schedule', () => {
  // Last in the file: from now on the scheduled decay may run (at the wall clock) in this world.
  it('is scheduled by a BullMQ job scheduler (one per interval across processes)', async () => {
    const scheduler = await startTally(world, ['scheduler']);
    try {
      const schedulers = await scheduler.producer.queue('maintenance').getJobSchedulers();
      expect(schedulers.map((s) => s.key ?? s.id)).toContain('affinity-decay');
    } finally {
      await scheduler.stop();
    }
  });
});
