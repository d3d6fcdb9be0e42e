import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDecay } from '../src/affinity/decay.ts';
import '../src/affinity/register.ts';
import { ConfigCache } from '../src/config/store.ts';
import { AFFINITY_TEST_CONFIG } from './helpers/affinity-config.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
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
  tally = await startTally(world);
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

    // Ten days later: idle days 4…10 decay, 7 × 5 = 35.
    const later = new Date(start + 10 * DAY);
    const first = await runDecay(world.sql, configs, { now: later });
    expect(first).toMatchObject({ task: 'decay', devices_decayed: 2, amount_decayed: 35 + 35, level_downs: 1 });
    expect(await value('u-decay', 'd1')).toBe(85);
    expect(await value('u-fresh', 'd1')).toBe(15);
    const [log] = await world.sql`SELECT kind, source, change, before, after, level_before, level_after FROM affinity_log WHERE user_id = 'u-decay' AND kind = 'decay'`;
    expect(log).toEqual({ kind: 'decay', source: 'decay', change: -35, before: 120, after: 85, level_before: 2, level_after: 1 });
    const [down] = await world.sql`SELECT data FROM outbox WHERE user_id = 'u-decay' AND type = 'level_down'`;
    expect(down!.data).toEqual({ device_id: 'd1', old_level: 2, new_level: 1 });

    // The same day again: nothing changes.
    const logsBefore = await world.sql`SELECT count(*)::int AS n FROM affinity_log`;
    expect(await runDecay(world.sql, configs, { now: new Date(later.getTime() + 3600_000) })).toMatchObject({ devices_decayed: 0, amount_decayed: 0 });
    expect(await value('u-decay', 'd1')).toBe(85);
    expect((await world.sql`SELECT count(*)::int AS n FROM affinity_log`)[0]!.n).toBe(logsBefore[0]!.n);

    // One more day: one more day's decay (missed days would be caught up the same way).
    expect(await runDecay(world.sql, configs, { now: new Date(start + 11 * DAY) })).toMatchObject({ devices_decayed: 2, amount_decayed: 10 });
    expect(await value('u-decay', 'd1')).toBe(80);

    // Back above level 2: level_up, but its reward was granted once ever.
    expect(await adjust('u-decay', 'd1', 50)).toMatchObject({ after: 130, level_before: 1, level_after: 2, rewards: [] });
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

  it('is scheduled by a BullMQ job scheduler (one per interval across processes)', async () => {
    const schedulers = await tally.producer.queue('maintenance').getJobSchedulers();
    expect(schedulers.map((s) => s.key ?? s.id)).toContain('affinity-decay');
  });
});
