import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyAffinityCommands } from '../src/affinity/apply.ts';
import type { AffinityAdjustCommand } from '../src/affinity/commands.ts';
import '../src/affinity/register.ts';
import { rewardEventId } from '../src/affinity/rewards.ts';
import { parseConfigDocument, type ConfigDocument } from '../src/config/document.ts';
import { idSchema } from '../src/queues/common.ts';
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
  tally = await startTally(world);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

function adjust(user: string, device: string, delta: number) {
  return tally.producer.affinityAdjust({ event_id: id('adj'), user_id: user, device_id: device, delta, operator_id: 'ops', reason: 'test' }, { wait: true }) as Promise<any>;
}
async function balance(user: string, asset = 'points'): Promise<number> {
  return (await tally.http('GET', `/v1/users/${encodeURIComponent(user)}/balances/${asset}`)).body.balance;
}
async function grantedLevels(user: string, device: string): Promise<number[]> {
  const rows = await world.sql`SELECT level FROM affinity_granted_levels WHERE user_id = ${user} AND device_id = ${device} ORDER BY level`;
  return rows.map((r) => r.level as number);
}
async function levelUps(user: string): Promise<any[]> {
  const rows = await world.sql`SELECT data FROM outbox WHERE user_id = ${user} AND type = 'level_up' ORDER BY outbox_id`;
  return rows.map((r) => r.data);
}

describe('level reward ids', () => {
  const hostileId = fc.stringMatching(/^[A-Za-z0-9._@-]{1,128}$/).filter((s) => idSchema.safeParse(s).success);
  const key = fc.tuple(hostileId, hostileId, fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 50 }));

  it('are injective, within the id charset, never all digits, and never an id of the old format (lvl-…)', () => {
    const valid = (s: string) => idSchema.safeParse(s).success && !s.startsWith('lvl-');
    fc.assert(
      fc.property(key, key, (a, b) => {
        const ia = rewardEventId(...a);
        const ib = rewardEventId(...b);
        expect(valid(ia), ia).toBe(true);
        if (JSON.stringify(a) !== JSON.stringify(b)) expect(ia).not.toBe(ib);
        else expect(ia).toBe(ib);
      }),
      { numRuns: 3000 },
    );
  });

  it('keep apart the inputs the old format confused', () => {
    const confusable: [string, string, number, number][] = [
      ['u-x', 'd', 2, 0],
      ['u', 'x-d', 2, 0],
      ['u', 'x', 2, 0],
      ['u-x-2', 'd', 1, 0],
      ['u', 'x-2-d', 1, 0],
      ['a', 'b', 1, 1], // old: lvl-a-b-1.1
      ['a', 'b-1', 1, 0], // old: lvl-a-b-1-1
      ['a', 'b', 11, 0],
      ['a.1', 'b', 1, 0],
      ['a', '1.b', 1, 0],
      ['@', '.', 0, 0],
      ['x'.repeat(128), 'y'.repeat(128), 7, 3],
      ['x'.repeat(128), 'y'.repeat(128), 7, 4],
      ['x'.repeat(127), `x${'y'.repeat(128)}`.slice(0, 128), 7, 3],
    ];
    const ids = confusable.map((k) => rewardEventId(...k));
    expect(new Set(ids).size).toBe(ids.length);
    for (const i of ids) expect(idSchema.safeParse(i).success, i).toBe(true);
    // Deterministic: the same reward always derives the same id.
    expect(rewardEventId('u-x', 'd', 2, 0)).toBe(ids[0]);
  });
});

describe('level rewards through the real queues', () => {
  it('u-x/d and u/x-d each earn their own level 2 reward (the old ids collided)', async () => {
    const a = await adjust('u-x', 'd', 120);
    const b = await adjust('u', 'x-d', 120);
    for (const [r, user] of [[a, 'u-x'], [b, 'u']] as const) {
      expect(r).toMatchObject({ outcome: 'applied', level_after: 2, rewards: [{ level: 2, asset: 'points', amount: 50, outcome: 'applied' }] });
      expect(r.rewards_pending).toBeUndefined();
      expect(await balance(user)).toBe(50);
      expect((await levelUps(user))[0].rewards).toEqual([{ level: 2, asset: 'points', amount: 50 }]);
    }
    expect(a.rewards[0].event_id).not.toBe(b.rewards[0].event_id);
    expect(await grantedLevels('u-x', 'd')).toEqual([2]);
    expect(await grantedLevels('u', 'x-d')).toEqual([2]);
    expect(await world.sql`SELECT 1 FROM dead_letters WHERE queue = 'grants'`).toHaveLength(0);
  });

  it('hostile ids (-, ., @, 128 chars) earn each reward once, with ids within the charset', async () => {
    const long = `@.-${'z'.repeat(125)}`;
    const r = await adjust(long, `-.@${'q'.repeat(125)}`, 250);
    expect(r.rewards.map((x: any) => [x.level, x.asset, x.amount, x.outcome])).toEqual([
      [2, 'points', 50, 'applied'],
      [3, 'points', 70, 'applied'],
      [3, 'credits', 5, 'applied'],
      [4, 'points', 100, 'applied'],
    ]);
    for (const x of r.rewards) expect(idSchema.safeParse(x.event_id).success).toBe(true);
    expect(await balance(long)).toBe(220);
    expect(await balance(long, 'credits')).toBe(5);
  });

  it('a reward grant that cannot apply (its id already taken) leaves the level unrewarded, and is not announced', async () => {
    // Someone else's grant took the id the level 2 reward of u-taken/d1 derives.
    const taken = rewardEventId('u-taken', 'd1', 2, 0);
    await tally.producer.grant({ event_id: taken, user_id: 'someone-else', asset: 'points', amount: 1, source: 'gift' }, { wait: true });
    const r = await adjust('u-taken', 'd1', 160);
    expect(r).toMatchObject({ outcome: 'applied', level_after: 3 });
    // Level 3's rewards applied; level 2's did not: it is listed as pending, not as granted.
    expect(r.rewards.map((x: any) => [x.level, x.asset, x.amount])).toEqual([
      [3, 'points', 70],
      [3, 'credits', 5],
    ]);
    expect(r.rewards_pending).toEqual([{ level: 2, asset: 'points', amount: 50, event_id: taken, reason: 'idempotency_conflict' }]);
    expect((await levelUps('u-taken'))[0]).toEqual({
      device_id: 'd1', old_level: 1, new_level: 3,
      rewards: [{ level: 3, asset: 'points', amount: 70 }, { level: 3, asset: 'credits', amount: 5 }],
    });
    expect(await grantedLevels('u-taken', 'd1')).toEqual([3]);
    expect(await balance('u-taken')).toBe(70);

    // A later crossing tries again (still taken here: still not rewarded, never granted twice).
    await adjust('u-taken', 'd1', -100);
    const again = await adjust('u-taken', 'd1', 100);
    expect(again.rewards).toEqual([]);
    expect(again.rewards_pending).toMatchObject([{ level: 2, reason: 'idempotency_conflict' }]);
    expect(await grantedLevels('u-taken', 'd1')).toEqual([3]);
    expect(await balance('u-taken')).toBe(70);
    expect(await balance('someone-else')).toBe(1);
    await expectInvariants(world.sql);
  });

  it('levels rewarded before the upgrade (old-format ids) are never rewarded again', async () => {
    // What the old code left: the reward granted under lvl-{user}-{device}-{level}, the level marked.
    const oldId = 'lvl-u-legacy-d1-2';
    await tally.producer.grant({ event_id: oldId, user_id: 'u-legacy', asset: 'points', amount: 50, source: 'affinity_level', source_id: 'd1' }, { wait: true });
    await world.sql`INSERT INTO affinity_devices (user_id, device_id, value, level) VALUES ('u-legacy', 'd1', 0, 1)`;
    await world.sql`INSERT INTO affinity_granted_levels (user_id, device_id, level, event_id) VALUES ('u-legacy', 'd1', 2, ${oldId})`;
    const r = await adjust('u-legacy', 'd1', 160);
    expect(r.rewards.map((x: any) => x.level)).toEqual([3, 3]);
    await adjust('u-legacy', 'd1', -160);
    expect((await adjust('u-legacy', 'd1', 300)).rewards.map((x: any) => x.level)).toEqual([4]);
    expect(await balance('u-legacy')).toBe(50 + 70 + 100);
    expect(await grantedLevels('u-legacy', 'd1')).toEqual([2, 3, 4]);

    // The old code also marked a level whose grant collided (user u / device legacy-d1 derived the same old id):
    // the operator query of docs/affinity.md lists exactly such levels.
    await world.sql`INSERT INTO affinity_granted_levels (user_id, device_id, level, event_id) VALUES ('u', 'legacy-d1', 2, ${oldId})`;
    const suspicious = await world.sql`
      SELECT g.user_id, g.device_id, g.level FROM affinity_granted_levels g WHERE g.event_id LIKE 'lvl-%'
        AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.event_id = g.event_id AND e.user_id = g.user_id)`;
    expect(suspicious).toEqual([{ user_id: 'u', device_id: 'legacy-d1', level: 2 }]);
  });
});

describe('a level whose reward grants failed is rewarded on a later crossing', () => {
  const good = () => parseConfigDocument(structuredClone(AFFINITY_TEST_CONFIG));
  /** A document the validator would refuse (level 3 rewards an undeclared asset): the engine must still be safe. */
  function withoutCredits(): ConfigDocument {
    const doc = good();
    delete (doc.assets as Record<string, unknown>).credits;
    return doc;
  }
  async function direct(user: string, delta: number, config: ConfigDocument) {
    const eventId = id('direct');
    const cmd: AffinityAdjustCommand = {
      op: 'adjust', queue: 'affinity-events', eventId, jobId: eventId, payloadHash: eventId, payload: {},
      userId: user, deviceId: 'd1', delta, operatorId: 'ops', reason: 'test', occurredAt: new Date(),
    };
    const report = await world.sql.begin((tx) => applyAffinityCommands(tx, [cmd], { config, now: new Date() }));
    const o = report.outcomes[0]!;
    if (!o.ok) throw o.error;
    return o.result as any;
  }

  it('the same event twice in one batch: the replay answers the original result, rewards included', async () => {
    const eventId = id('twice');
    const cmd: AffinityAdjustCommand = {
      op: 'adjust', queue: 'affinity-events', eventId, jobId: eventId, payloadHash: eventId, payload: {},
      userId: 'u-twice', deviceId: 'd1', delta: 160, operatorId: 'ops', reason: 'test', occurredAt: new Date(),
    };
    const report = await world.sql.begin((tx) => applyAffinityCommands(tx, [cmd, { ...cmd }], { config: withoutCredits(), now: new Date() }));
    const [first, second] = report.outcomes.map((o) => (o.ok ? (o.result as any) : o.error));
    expect(first.rewards).toHaveLength(2);
    expect(first.rewards_pending).toHaveLength(1);
    expect(second).toEqual({ ...first, outcome: 'noop_duplicate', original_outcome: 'applied' });
    expect(await balance('u-twice')).toBe(120);
  });

  it('grants what it can, keeps the level open, and later grants only what is missing — once ever', async () => {
    const first = await direct('u-partial', 160, withoutCredits());
    expect(first.rewards.map((x: any) => [x.level, x.asset, x.amount])).toEqual([
      [2, 'points', 50],
      [3, 'points', 70],
    ]);
    expect(first.rewards_pending).toMatchObject([{ level: 3, asset: 'credits', amount: 5, reason: 'invalid_payload' }]);
    expect(await grantedLevels('u-partial', 'd1')).toEqual([2]);

    await direct('u-partial', -100, good());
    const second = await direct('u-partial', 100, good());
    // Level 3's points were granted the first time (the ledger answers noop_duplicate): only credits now.
    expect(second.rewards.map((x: any) => [x.level, x.asset, x.amount])).toEqual([[3, 'credits', 5]]);
    expect(second.rewards_pending).toBeUndefined();
    expect(await grantedLevels('u-partial', 'd1')).toEqual([2, 3]);

    await direct('u-partial', -150, good());
    expect((await direct('u-partial', 150, good())).rewards).toEqual([]);
    expect(await balance('u-partial')).toBe(120);
    expect(await balance('u-partial', 'credits')).toBe(5);
    const entries = await world.sql`SELECT count(*)::int AS n FROM ledger_entries WHERE user_id = 'u-partial' AND kind = 'grant'`;
    expect(entries[0]!.n).toBe(3);
    await expectInvariants(world.sql);
  });
});
