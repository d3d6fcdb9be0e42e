import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/affinity/register.ts';
import { AFFINITY_TEST_CONFIG } from './helpers/affinity-config.ts';
import { ADMIN_TOKEN, createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;
let n = 0;
const id = (p: string) => `${p}-${++n}-${Date.now().toString(36)}`;

beforeAll(async () => {
  world = await createWorld();
  await world.applyConfig(AFFINITY_TEST_CONFIG);
  tally = await startTally(world);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

const at = (iso: string, plusSeconds = 0) => new Date(Date.parse(iso) + plusSeconds * 1000).toISOString();
const ago = (seconds: number) => new Date(Date.now() - seconds * 1000).toISOString();

function ev(user: string, device: string, rule: string, occurred_at?: string, extra: Record<string, unknown> = {}) {
  return tally.producer.affinityEvent(
    { event_id: id('ae'), user_id: user, device_id: device, rule_key: rule, source: 'device', ...(occurred_at ? { occurred_at } : {}), ...extra },
    { wait: true },
  ) as Promise<any>;
}
function adjust(user: string, device: string, delta: number, extra: Record<string, unknown> = {}) {
  return tally.producer.affinityAdjust(
    { event_id: id('adj'), user_id: user, device_id: device, delta, operator_id: 'ops-1', reason: 'test', ...extra },
    { wait: true },
  ) as Promise<any>;
}
async function score(user: string, device: string) {
  const r = await tally.http('GET', `/v1/users/${user}/devices/${device}/affinity`);
  expect(r.status).toBe(200);
  return r.body;
}
async function balance(user: string, asset: string): Promise<number> {
  return (await tally.http('GET', `/v1/users/${user}/balances/${asset}`)).body.balance;
}

describe('affinity events: every outcome through the real queue', () => {
  it('applies a rule, and reads value, level and progress over HTTP', async () => {
    const r = await ev('u-apply', 'd1', 'chat');
    expect(r).toEqual({ outcome: 'applied', change: 2, before: 0, after: 2, level_before: 1, level_after: 1, rewards: [] });
    expect(await score('u-apply', 'd1')).toEqual({ user_id: 'u-apply', device_id: 'd1', value: 2, level: 1, next_level: 2, next_threshold: 100, progress: 0.02 });
    const [log] = await world.sql`SELECT kind, rule_key, source, outcome, change, before, after FROM affinity_log WHERE user_id = 'u-apply'`;
    expect(log).toEqual({ kind: 'event', rule_key: 'chat', source: 'device', outcome: 'applied', change: 2, before: 0, after: 2 });
    const outbox = await world.sql`SELECT type, data FROM outbox WHERE user_id = 'u-apply'`;
    expect(outbox).toEqual([{ type: 'affinity_update', data: { device_id: 'd1', change: 2, before: 0, after: 2, rule_key: 'chat', source: 'device' } }]);
  });

  it('reads a device never seen as zeros', async () => {
    expect(await score('nobody', 'nothing')).toMatchObject({ value: 0, level: 1, next_level: 2, next_threshold: 100, progress: 0 });
  });

  it('noop_no_rule for an unknown or disabled rule', async () => {
    expect((await ev('u-norule', 'd1', 'dance')).outcome).toBe('noop_no_rule');
    expect((await ev('u-norule', 'd1', 'off')).outcome).toBe('noop_no_rule');
    expect((await score('u-norule', 'd1')).value).toBe(0);
  });

  it('noop_cooldown within cooldown_seconds of the last applied event, by occurred_at', async () => {
    const t0 = ago(3600);
    expect((await ev('u-cool', 'd1', 'chat', t0)).outcome).toBe('applied');
    expect((await ev('u-cool', 'd1', 'chat', at(t0, 59))).outcome).toBe('noop_cooldown');
    // The refused event does not restart the cooldown: 60 s after the applied one is allowed.
    expect((await ev('u-cool', 'd1', 'chat', at(t0, 60))).outcome).toBe('applied');
    // Other rules and other devices have their own cooldowns.
    expect((await ev('u-cool', 'd2', 'chat', at(t0, 61))).outcome).toBe('applied');
    expect((await score('u-cool', 'd1')).value).toBe(4);
  });

  it('a late event is judged against the applied events around its occurred_at', async () => {
    const t0 = ago(7200);
    expect((await ev('u-late', 'd1', 'chat', t0)).outcome).toBe('applied');
    expect((await ev('u-late', 'd1', 'chat', at(t0, 300))).outcome).toBe('applied');
    expect((await ev('u-late', 'd1', 'chat', at(t0, 30))).outcome).toBe('noop_cooldown');
    expect((await ev('u-late', 'd1', 'chat', at(t0, 150))).outcome).toBe('applied');
    expect((await ev('u-late', 'd1', 'chat', at(t0, 200))).outcome).toBe('noop_cooldown');
  });

  it('per-unit amounts clamp to single_cap; the per-rule daily cap cuts the last change, then refuses', async () => {
    const t = ago(7200);
    expect(await ev('u-rcap', 'd1', 'gift', t, { metadata: { units: 5, note: 'roses' } })).toMatchObject({ outcome: 'applied', change: 45 });
    expect(await ev('u-rcap', 'd1', 'gift', at(t, 1), { metadata: { units: 2 } })).toMatchObject({ outcome: 'applied', change: 15, before: 45, after: 60 });
    expect(await ev('u-rcap', 'd1', 'gift', at(t, 2), { metadata: { units: 1 } })).toMatchObject({ outcome: 'noop_rule_daily_cap', change: 0, after: 60 });
    const counters = await world.sql`SELECT scope, positive_sum::int AS sum FROM affinity_daily WHERE user_id = 'u-rcap' ORDER BY scope`;
    expect(counters).toEqual([{ scope: '*', sum: 60 }, { scope: 'gift', sum: 60 }]);
  });

  it('the global daily cap cuts across rules, then refuses; negative rules are never capped', async () => {
    const t = ago(7200);
    await ev('u-gcap', 'd1', 'gift', t, { metadata: { units: 3 } }); // 45
    await ev('u-gcap', 'd1', 'like', at(t, 1)); // 75
    expect(await ev('u-gcap', 'd1', 'like', at(t, 2))).toMatchObject({ outcome: 'applied', change: 25, after: 100, level_after: 2 });
    expect(await ev('u-gcap', 'd1', 'like', at(t, 3))).toMatchObject({ outcome: 'noop_global_daily_cap', change: 0 });
    expect(await ev('u-gcap', 'd1', 'rude', at(t, 4))).toMatchObject({ outcome: 'applied', change: -10, after: 90, level_after: 1 });
    // Taking some back does not free cap: the counters hold the positive sum.
    expect((await ev('u-gcap', 'd1', 'like', at(t, 5))).outcome).toBe('noop_global_daily_cap');
  });

  it('noop_value_boundary at 0 and at max_affinity; a negative change clamps at 0', async () => {
    expect(await ev('u-bound', 'd1', 'rude')).toMatchObject({ outcome: 'noop_value_boundary', change: 0, before: 0, after: 0 });
    await ev('u-bound', 'd1', 'chat');
    expect(await ev('u-bound', 'd1', 'rude')).toMatchObject({ outcome: 'applied', change: -2, after: 0 });
    await adjust('u-bound', 'd2', 995);
    expect(await ev('u-bound', 'd2', 'gift', undefined, { metadata: { units: 1 } })).toMatchObject({ outcome: 'applied', change: 5, after: 1000 });
    expect(await ev('u-bound', 'd2', 'like')).toMatchObject({ outcome: 'noop_value_boundary', after: 1000 });
  });

  it('a replay after the job was removed is noop_duplicate with the original result; a changed payload is idempotency_conflict', async () => {
    const payload = { event_id: id('dup'), user_id: 'u-dup', device_id: 'd1', rule_key: 'like', source: 'phone' };
    const first = (await tally.producer.affinityEvent(payload, { wait: true })) as any;
    expect(first).toMatchObject({ outcome: 'applied', change: 30 });
    await tally.producer.queue('affinity-events').remove(payload.event_id);
    const again = (await tally.producer.affinityEvent(payload, { wait: true })) as any;
    expect(again).toEqual({ ...first, outcome: 'noop_duplicate', original_outcome: 'applied' });
    await tally.producer.queue('affinity-events').remove(payload.event_id);
    const err = await tally.producer.affinityEvent({ ...payload, rule_key: 'chat' }, { wait: true }).catch((e: Error) => e);
    expect(String((err as Error).message)).toMatch(/^idempotency_conflict/);
    expect((await score('u-dup', 'd1')).value).toBe(30);
  });
});

describe('natural days', () => {
  it('the day turns at 00:00 Asia/Shanghai = 16:00 UTC the day before', async () => {
    await ev('u-day', 'd1', 'gift', '2026-11-10T15:59:58Z', { metadata: { units: 4 } }); // 45
    await ev('u-day', 'd1', 'gift', '2026-11-10T15:59:59Z', { metadata: { units: 4 } }); // +15 (cap 60)
    expect((await ev('u-day', 'd1', 'gift', '2026-11-10T15:59:59.999Z')).outcome).toBe('noop_rule_daily_cap');
    expect(await ev('u-day', 'd1', 'gift', '2026-11-10T16:00:00Z')).toMatchObject({ outcome: 'applied', change: 15 });
    const days = await world.sql`SELECT day::text AS day, positive_sum::int AS sum FROM affinity_daily WHERE user_id = 'u-day' AND scope = 'gift' ORDER BY day`;
    expect(days).toEqual([{ day: '2026-11-10', sum: 60 }, { day: '2026-11-11', sum: 15 }]);
  });

  it('in a DST zone the day follows the local midnight (America/New_York, spring forward 2026-03-08)', async () => {
    const ny = structuredClone(AFFINITY_TEST_CONFIG);
    ny.affinity.settings.timezone = 'America/New_York';
    await world.applyConfig(ny);
    try {
      // 2026-03-08 local starts at 05:00Z (EST) and, 23 hours long, ends at 04:00Z next day (EDT).
      await ev('u-dst', 'd1', 'gift', '2026-03-08T04:59:59Z', { metadata: { units: 4 } });
      await ev('u-dst', 'd1', 'gift', '2026-03-08T05:00:00Z', { metadata: { units: 4 } });
      await ev('u-dst', 'd1', 'gift', '2026-03-09T03:59:59Z', { metadata: { units: 4 } });
      await ev('u-dst', 'd1', 'gift', '2026-03-09T04:00:00Z', { metadata: { units: 4 } });
      const days = await world.sql`SELECT day::text AS day, positive_sum::int AS sum FROM affinity_daily WHERE user_id = 'u-dst' AND scope = 'gift' ORDER BY day`;
      expect(days).toEqual([
        { day: '2026-03-07', sum: 45 },
        { day: '2026-03-08', sum: 60 },
        { day: '2026-03-09', sum: 45 },
      ]);
    } finally {
      await world.applyConfig(AFFINITY_TEST_CONFIG);
    }
  });
});

describe('levels and rewards', () => {
  it('a jump over 3 levels grants each level’s rewards once, in the same transaction, and pushes level_up', async () => {
    const r = await adjust('u-lvl', 'd1', 250);
    expect(r).toMatchObject({ outcome: 'applied', change: 250, level_before: 1, level_after: 4 });
    expect(r.rewards.map((x: any) => [x.level, x.asset, x.amount, x.event_id, x.outcome])).toEqual([
      [2, 'points', 50, 'lvl.5.u-lvl.2.d1.2.0', 'applied'],
      [3, 'points', 70, 'lvl.5.u-lvl.2.d1.3.0', 'applied'],
      [3, 'credits', 5, 'lvl.5.u-lvl.2.d1.3.1', 'applied'],
      [4, 'points', 100, 'lvl.5.u-lvl.2.d1.4.0', 'applied'],
    ]);
    expect(await balance('u-lvl', 'points')).toBe(220);
    expect(await balance('u-lvl', 'credits')).toBe(5);
    const [up] = await world.sql`SELECT data FROM outbox WHERE user_id = 'u-lvl' AND type = 'level_up'`;
    expect(up!.data).toMatchObject({ device_id: 'd1', old_level: 1, new_level: 4 });
    expect(up!.data.rewards).toHaveLength(4);

    // Down below level 2 (level_down), then up again: nothing is granted a second time.
    expect(await adjust('u-lvl', 'd1', -200)).toMatchObject({ after: 50, level_after: 1, rewards: [] });
    expect(await adjust('u-lvl', 'd1', 200)).toMatchObject({ after: 250, level_after: 4, rewards: [] });
    expect(await balance('u-lvl', 'points')).toBe(220);
    const types = await world.sql`SELECT type FROM outbox WHERE user_id = 'u-lvl' AND type LIKE 'level%' ORDER BY outbox_id`;
    expect(types.map((t) => t.type)).toEqual(['level_up', 'level_down', 'level_up']);
    const granted = await world.sql`SELECT level FROM affinity_granted_levels WHERE user_id = 'u-lvl' ORDER BY level`;
    expect(granted.map((g) => g.level)).toEqual([2, 3, 4]);
    await expectInvariants(world.sql);
  });

  it('a reward id too long for the charset is hashed, deterministically', async () => {
    const user = `u${'x'.repeat(89)}`; // 90 chars: the path stays within fastify's param limit
    const r = await adjust(user, 'device-with-a-rather-long-name-0123456789', 120);
    expect(r.rewards[0].event_id).toMatch(/^lvl\.h\.[0-9a-f]{64}$/);
    const b = await tally.http('GET', `/v1/users/${user}/balances/points`);
    expect(b.body).toMatchObject({ balance: 50 });
  });
});

describe('admin adjust over HTTP', () => {
  it('enqueues, waits and returns the result; logged with operator and reason', async () => {
    const r = await tally.http('POST', '/v1/admin/affinity/adjust', { user_id: 'u-http', device_id: 'd1', delta: 40, operator_id: 'alice-ops', reason: 'goodwill' }, ADMIN_TOKEN);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ event_id: expect.stringMatching(/^adjust-/), outcome: 'applied', change: 40, before: 0, after: 40 });
    const [log] = await world.sql`SELECT kind, operator_id, reason, change FROM affinity_log WHERE user_id = 'u-http'`;
    expect(log).toEqual({ kind: 'adjust', operator_id: 'alice-ops', reason: 'goodwill', change: 40 });
    const clamped = await tally.http('POST', '/v1/admin/affinity/adjust', { event_id: 'adj-clamp-1', user_id: 'u-http', device_id: 'd1', delta: -1000, operator_id: 'alice-ops', reason: 'reset' }, ADMIN_TOKEN);
    expect(clamped.body).toMatchObject({ event_id: 'adj-clamp-1', outcome: 'applied', change: -40, after: 0 });
  });

  it('needs the admin token, and refuses a delta beyond 32 bits with 400', async () => {
    const body = { user_id: 'u-http2', device_id: 'd1', delta: 5, operator_id: 'ops', reason: 'x' };
    expect((await tally.http('POST', '/v1/admin/affinity/adjust', body)).status).toBe(403);
    expect((await tally.http('POST', '/v1/admin/affinity/adjust', body, null)).status).toBe(401);
    const big = await tally.http('POST', '/v1/admin/affinity/adjust', { ...body, delta: 2 ** 31 }, ADMIN_TOKEN);
    expect(big.status).toBe(400);
    expect(big.body.error.message).toMatch(/delta must be within the 32-bit integer range/);
    expect((await score('u-http2', 'd1')).value).toBe(0);
  });
});

describe('bad input', () => {
  async function rawJob(data: Record<string, unknown>) {
    const eventId = data.event_id as string;
    const job = await tally.producer.queue('affinity-events').add(String(data.type), data, { jobId: eventId, attempts: 5 });
    const err = await tally.producer.result('affinity-events', job).catch((e: Error) => e);
    const failed = await tally.producer.queue('affinity-events').getJob(eventId);
    expect(await failed!.getState()).toBe('failed');
    expect(failed!.attemptsMade).toBe(1);
    return String((err as Error).message);
  }
  const event = (extra: Record<string, unknown>) => ({ type: 'affinity.event', event_id: id('bad'), user_id: 'u-bad', device_id: 'd1', rule_key: 'gift', source: 'device', ...extra });

  it('rejects unknown fields, wrong types, negative units, a 32-bit overflowing delta and a future occurred_at, changing nothing', async () => {
    expect(await rawJob(event({ colour: 'red' }))).toMatch(/^invalid_payload: .*colour/);
    expect(await rawJob(event({ rule_key: 42 }))).toMatch(/^invalid_payload: rule_key/);
    expect(await rawJob(event({ metadata: { units: -2 } }))).toMatch(/^invalid_payload: metadata.units: units must be at least 1/);
    expect(await rawJob(event({ metadata: { units: 1.5 } }))).toMatch(/^invalid_payload: metadata.units: units must be an integer/);
    expect(await rawJob(event({ occurred_at: new Date(Date.now() + 10 * 60_000).toISOString() }))).toMatch(/^invalid_payload: occurred_at is more than 5 minutes in the future/);
    const adj = { type: 'affinity.adjust', event_id: id('bad'), user_id: 'u-bad', device_id: 'd1', delta: 2_147_483_648, operator_id: 'ops', reason: 'r' };
    expect(await rawJob(adj)).toMatch(/^invalid_payload: delta: delta must be within the 32-bit integer range/);
    expect(await rawJob({ ...adj, event_id: id('bad'), delta: -2_147_483_649 })).toMatch(/^invalid_payload: delta/);
    const dead = await world.sql`SELECT reason_code FROM dead_letters WHERE queue = 'affinity-events' AND payload->>'user_id' = 'u-bad'`;
    expect(dead).toHaveLength(7);
    expect(dead.every((d) => d.reason_code === 'invalid_payload')).toBe(true);
    expect(await world.sql`SELECT 1 FROM affinity_devices WHERE user_id = 'u-bad'`).toHaveLength(0);
    expect(await world.sql`SELECT 1 FROM processed_events WHERE result->>'outcome' IS NOT NULL AND event_id LIKE 'bad-%'`).toHaveLength(0);
  });

  it('the SDK refuses the same payloads before enqueueing', async () => {
    await expect(tally.producer.affinityEvent({ event_id: id('sdk'), user_id: 'u', device_id: 'd', rule_key: 'gift', source: 's', metadata: { units: -1 } })).rejects.toThrow(/^invalid_payload: metadata.units/);
    await expect(tally.producer.affinityAdjust({ event_id: id('sdk'), user_id: 'u', device_id: 'd', delta: 2 ** 40, operator_id: 'o', reason: 'r' })).rejects.toThrow(/^invalid_payload: delta/);
  });

  it('every invariant holds after all of the above', async () => {
    await expectInvariants(world.sql);
  });
});
