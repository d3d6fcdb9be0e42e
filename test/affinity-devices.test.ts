import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDecay } from '../src/affinity/decay.ts';
import { readDeviceState, setDeviceActive } from '../src/affinity/devices.ts';
import '../src/affinity/register.ts';
import { ConfigCache } from '../src/config/store.ts';
import { AFFINITY_TEST_CONFIG } from './helpers/affinity-config.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;
let n = 0;
const id = (p: string) => `${p}-${++n}-${Date.now().toString(36)}`;

beforeAll(async () => {
  world = await createWorld();
  await world.applyConfig(AFFINITY_TEST_CONFIG);
  // No scheduler role: a scheduled decay at the wall clock would decay the back-dated devices mid-test.
  tally = await startTally(world, ['api', 'worker']);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

function ev(user: string, device: string, rule: string, extra: Record<string, unknown> = {}) {
  return tally.producer.affinityEvent({ event_id: id('ev'), user_id: user, device_id: device, rule_key: rule, source: 'device', ...extra }, { wait: true }) as Promise<any>;
}
function adjust(user: string, device: string, delta: number) {
  return tally.producer.affinityAdjust({ event_id: id('adj'), user_id: user, device_id: device, delta, operator_id: 'ops', reason: 'test' }, { wait: true }) as Promise<any>;
}

describe('deactivated devices', () => {
  it('a device never seen reads active, 0, the level of 0; setting a flag is idempotent', async () => {
    expect(await readDeviceState(world.sql, 'u-new', 'never')).toEqual({ active: true, value: 0, level: 1 });
    expect(await setDeviceActive(world.sql, 'u-new', 'd1', false)).toEqual({ active: false, value: 0, level: 1 });
    expect(await setDeviceActive(world.sql, 'u-new', 'd1', false)).toEqual({ active: false, value: 0, level: 1 });
    expect(await readDeviceState(world.sql, 'u-new', 'd1')).toEqual({ active: false, value: 0, level: 1 });
    expect(await setDeviceActive(world.sql, 'u-new', 'd1', true)).toEqual({ active: true, value: 0, level: 1 });
    // The affinity read of a device created by the flag still reads as zeros.
    expect((await tally.http('GET', '/v1/users/u-new/devices/d1/affinity')).body).toMatchObject({ value: 0, level: 1 });
  });

  it('an affinity.event for an inactive device answers noop_device_inactive and changes nothing', async () => {
    await ev('u-off', 'd1', 'chat');
    expect(await setDeviceActive(world.sql, 'u-off', 'd1', false)).toEqual({ active: false, value: 2, level: 1 });
    const payload = { event_id: id('off'), user_id: 'u-off', device_id: 'd1', rule_key: 'like', source: 'phone' };
    const r = (await tally.producer.affinityEvent(payload, { wait: true })) as any;
    expect(r).toEqual({ outcome: 'noop_device_inactive', change: 0, before: 2, after: 2, level_before: 1, level_after: 1, rewards: [] });
    // Whatever the rule: an unknown rule on an inactive device is still noop_device_inactive.
    expect((await ev('u-off', 'd1', 'no-such-rule')).outcome).toBe('noop_device_inactive');
    // Nothing written but the decision: no log row, counter, cooldown clock or push.
    expect(await world.sql`SELECT 1 FROM affinity_log WHERE user_id = 'u-off' AND rule_key = 'like'`).toHaveLength(0);
    expect(await world.sql`SELECT 1 FROM affinity_daily WHERE user_id = 'u-off' AND scope = 'like'`).toHaveLength(0);
    expect(await world.sql`SELECT 1 FROM affinity_rule_state WHERE user_id = 'u-off' AND rule_key = 'like'`).toHaveLength(0);
    expect((await world.sql`SELECT count(*)::int AS n FROM outbox WHERE user_id = 'u-off'`)[0]!.n).toBe(1);
    expect(await readDeviceState(world.sql, 'u-off', 'd1')).toEqual({ active: false, value: 2, level: 1 });
    // Another device of the same user is not affected.
    expect((await ev('u-off', 'd2', 'like')).outcome).toBe('applied');

    // Reactivated: new events apply; the refused one stays decided (a replay answers its original result).
    expect(await setDeviceActive(world.sql, 'u-off', 'd1', true)).toEqual({ active: true, value: 2, level: 1 });
    await tally.producer.queue('affinity-events').remove(payload.event_id);
    const replay = (await tally.producer.affinityEvent(payload, { wait: true })) as any;
    expect(replay).toMatchObject({ outcome: 'noop_duplicate', original_outcome: 'noop_device_inactive', change: 0 });
    expect(await ev('u-off', 'd1', 'like')).toMatchObject({ outcome: 'applied', change: 30, after: 32 });
    await expectInvariants(world.sql);
  });

  it('admin adjusts still apply to an inactive device, level rewards included', async () => {
    await setDeviceActive(world.sql, 'u-adj', 'd1', false);
    const r = await adjust('u-adj', 'd1', 120);
    expect(r).toMatchObject({ outcome: 'applied', change: 120, after: 120, level_after: 2, rewards: [{ level: 2, amount: 50 }] });
    expect(await readDeviceState(world.sql, 'u-adj', 'd1')).toEqual({ active: false, value: 120, level: 2 });
    expect((await ev('u-adj', 'd1', 'like')).outcome).toBe('noop_device_inactive');
  });

  it('in one batch, events before and after a deactivation are decided by the state at their transaction', async () => {
    const events = Array.from({ length: 40 }, (_, i) => ({
      event_id: id('race'), user_id: 'u-race', device_id: 'd1', rule_key: 'gift', source: 'device', metadata: { units: 1 },
      occurred_at: new Date(Date.now() - 3_600_000 + i * 1000).toISOString(),
    }));
    const early = await tally.producer.affinityEventBulk(events.slice(0, 20), { batch: false });
    await setDeviceActive(world.sql, 'u-race', 'd1', false);
    const late = await tally.producer.affinityEventBulk(events.slice(20), { batch: false });
    const results = await Promise.all([...early, ...late].map((job) => tally.producer.result('affinity-events', job)));
    // Every event enqueued after the deactivation committed is refused; the score is exactly what was applied.
    for (const r of results.slice(20) as any[]) expect(r.outcome).toBe('noop_device_inactive');
    const applied = (results as any[]).filter((r) => r.outcome === 'applied');
    const [device] = await world.sql`SELECT value, active FROM affinity_devices WHERE user_id = 'u-race'`;
    expect(device).toEqual({ value: applied.reduce((s, r) => s + r.change, 0), active: false });
    await expectInvariants(world.sql);
  });

  it('decay leaves an inactive device alone; reactivating restarts its idle period (no catch-up of the inactive days)', async () => {
    const configs = new ConfigCache();
    // Last event 05-01 23:50 +08; left active, it would first decay at 05-06 00:00.
    await ev('u-idle', 'd1', 'like', { occurred_at: '2026-05-01T15:50:00Z' });
    await ev('u-idle', 'd2', 'like', { occurred_at: '2026-05-01T15:50:00Z' });
    await setDeviceActive(world.sql, 'u-idle', 'd1', false);
    await runDecay(world.sql, configs, { now: new Date('2026-05-20T16:00:00Z') }); // 05-21 00:00
    expect((await readDeviceState(world.sql, 'u-idle', 'd1')).value).toBe(30);
    expect((await readDeviceState(world.sql, 'u-idle', 'd2')).value).toBe(0); // 15 ended idle days: 30 lost

    try {
      await world.clock.set(new Date('2026-05-21T02:00:00Z')); // reactivated 05-21 10:00 +08
      await setDeviceActive(world.sql, 'u-idle', 'd1', true);
    } finally {
      await world.clock.advance(-(await world.clock.offset()));
    }
    // 05-22…05-24 are free again; 05-25 is the first charged, once it has ended.
    await runDecay(world.sql, configs, { now: new Date('2026-05-25T15:59:59.999Z') });
    expect((await readDeviceState(world.sql, 'u-idle', 'd1')).value).toBe(30);
    await runDecay(world.sql, configs, { now: new Date('2026-05-25T16:00:00Z') });
    expect((await readDeviceState(world.sql, 'u-idle', 'd1')).value).toBe(25);
    await expectInvariants(world.sql);
  });
});
