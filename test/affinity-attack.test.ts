import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDecay } from '../src/affinity/decay.ts';
import '../src/affinity/register.ts';
import { ConfigCache } from '../src/config/store.ts';
import { AFFINITY_TEST_CONFIG } from './helpers/affinity-config.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

// Attacks on the affinity engine through the real queue, compared with a model written from the contract that
// shares no code with src/ (fast-check prints the seed of a failure; `{ seed, path }` replays it).
let world: TestWorld;
let tally: InProcessTally;
let run = 0;

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

// ---- the model -------------------------------------------------------------------------------------------

const CFG = AFFINITY_TEST_CONFIG.affinity;
type Rule = { delta: number; cooldown_seconds?: number; daily_cap?: number; single_cap?: number; per_unit?: boolean; enabled?: boolean };
const RULES = CFG.rules as Record<string, Rule>;
const LEVELS = CFG.levels.map((l) => ({ level: l.level, threshold: l.threshold, rewards: (l as { rewards?: { asset: string; amount: number }[] }).rewards ?? [] }));
const HOUR = 3_600_000;
/** Asia/Shanghai has had no DST since 1991: its natural day is the UTC+8 calendar day. */
const shanghaiDay = (ms: number) => Math.floor((ms + 8 * HOUR) / 86_400_000);

class DeviceModel {
  value = 0;
  applied = new Map<string, number[]>();
  daily = new Map<string, number>(); // `${day}|${scope}` → positive change
  rewarded = new Set<number>();
  maxSeen = 0;

  level(value = this.value): number {
    let level = 0;
    for (const l of LEVELS) if (l.threshold <= value) level = Math.max(level, l.level);
    return level;
  }

  event(ruleKey: string, at: number, units: number) {
    const rule = RULES[ruleKey];
    if (!rule || rule.enabled === false) return this.noop('noop_no_rule');
    const cd = (rule.cooldown_seconds ?? 0) * 1000;
    if (cd > 0 && (this.applied.get(ruleKey) ?? []).some((t) => Math.abs(t - at) < cd)) return this.noop('noop_cooldown');
    let amount = rule.per_unit ? rule.delta * units : rule.delta;
    if (rule.single_cap !== undefined && Math.abs(amount) > rule.single_cap) amount = Math.sign(amount) * rule.single_cap;
    const day = shanghaiDay(at);
    if (amount > 0 && rule.daily_cap !== undefined) {
      amount = Math.min(amount, rule.daily_cap - (this.daily.get(`${day}|${ruleKey}`) ?? 0));
      if (amount <= 0) return this.noop('noop_rule_daily_cap');
    }
    if (amount > 0) {
      amount = Math.min(amount, CFG.settings.global_daily_cap - (this.daily.get(`${day}|*`) ?? 0));
      if (amount <= 0) return this.noop('noop_global_daily_cap');
    }
    const r = this.change(amount);
    if (r.outcome === 'applied') {
      this.applied.set(ruleKey, [...(this.applied.get(ruleKey) ?? []), at]);
      if (r.change > 0) for (const scope of [ruleKey, '*']) this.daily.set(`${day}|${scope}`, (this.daily.get(`${day}|${scope}`) ?? 0) + r.change);
    }
    return r;
  }

  change(amount: number) {
    const max = CFG.settings.max_affinity;
    const after = amount > 0 ? Math.max(this.value, Math.min(this.value + amount, max)) : Math.max(0, this.value + amount);
    if (after === this.value) return this.noop('noop_value_boundary');
    const before = this.value;
    this.value = after;
    this.maxSeen = Math.max(this.maxSeen, after);
    const rewards: number[] = [];
    for (const l of LEVELS) {
      if (l.threshold > before && l.threshold <= after && !this.rewarded.has(l.level)) {
        this.rewarded.add(l.level);
        for (let i = 0; i < l.rewards.length; i++) rewards.push(l.level);
      }
    }
    return { outcome: 'applied', change: after - before, after, level_after: this.level(), rewards };
  }

  noop(outcome: string) {
    return { outcome, change: 0, after: this.value, level_after: this.level(), rewards: [] as number[] };
  }
}

// ---- generators -----------------------------------------------------------------------------------------

const ID_CHARS = [...'abcXYZ019', '-', '.', '@', '_'];
/** Ids made of the separators the old reward ids confused, up to the charset's 128 characters. */
const hostileId = fc
  .oneof(
    fc.array(fc.constantFrom(...ID_CHARS), { minLength: 1, maxLength: 12 }).map((a) => a.join('')),
    fc.tuple(fc.constantFrom(...ID_CHARS), fc.integer({ min: 100, max: 120 })).map(([c, k]) => `${c}${'-.@'.repeat(k).slice(0, k)}`),
  )
  .map((s) => (/^\d+$/.test(s) ? `${s}x` : s));
const unique = (s: string) => `${++run}-${s}`.slice(0, 128);

// Around midnight in Shanghai (16:00Z), crowded enough that cooldowns (60 s) and daily caps bite.
const MIDNIGHT = Date.parse('2026-11-10T16:00:00Z');
const op = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('event' as const), rule: fc.constantFrom('chat', 'chat', 'gift', 'like', 'rude', 'off', 'nope'), at: fc.integer({ min: -1800, max: 1800 }), units: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('adjust' as const), delta: fc.integer({ min: -300, max: 300 }) }) },
);

describe('affinity under attack, against a model', () => {
  it('random event orders across cooldowns and a Shanghai midnight, one at a time: every result and the final state match the model', async () => {
    await fc.assert(
      fc.asyncProperty(hostileId, hostileId, fc.array(op, { minLength: 5, maxLength: 40 }), async (u, d, ops) => {
        const user = unique(u);
        const device = unique(d);
        const model = new DeviceModel();
        let k = 0;
        for (const o of ops) {
          const eventId = `atk-${run}-${k++}`;
          let got: any;
          let want: ReturnType<DeviceModel['event']>;
          if (o.kind === 'event') {
            const at = MIDNIGHT + o.at * 1000;
            got = await tally.producer.affinityEvent(
              { event_id: eventId, user_id: user, device_id: device, rule_key: o.rule, source: 'device', occurred_at: new Date(at).toISOString(), metadata: { units: o.units } },
              { wait: true },
            );
            want = model.event(o.rule, at, o.units);
          } else {
            got = await tally.producer.affinityAdjust({ event_id: eventId, user_id: user, device_id: device, delta: o.delta, operator_id: 'ops', reason: 'attack' }, { wait: true });
            want = model.change(o.delta);
          }
          expect({ ...got, rewards: got.rewards.map((r: any) => r.level) }, JSON.stringify(o)).toMatchObject(want);
          expect(got.rewards_pending).toBeUndefined();
        }
        await expectModelState(user, device, model);
      }),
      {
        numRuns: 8,
        examples: [
          // Across midnight within a cooldown (refused), a late event between two applied ones, caps on both days.
          ['u-.@', 'd.-@', [
            { kind: 'event', rule: 'chat', at: -30, units: 1 }, { kind: 'event', rule: 'chat', at: 20, units: 1 },
            { kind: 'event', rule: 'chat', at: 100, units: 1 }, { kind: 'event', rule: 'chat', at: 40, units: 1 },
            { kind: 'event', rule: 'gift', at: -5, units: 4 }, { kind: 'event', rule: 'gift', at: -4, units: 4 },
            { kind: 'event', rule: 'like', at: -3, units: 1 }, { kind: 'event', rule: 'like', at: -2, units: 1 },
            { kind: 'event', rule: 'gift', at: 5, units: 4 }, { kind: 'event', rule: 'like', at: 6, units: 1 },
            { kind: 'adjust', delta: 120 }, { kind: 'event', rule: 'rude', at: 7, units: 1 }, { kind: 'adjust', delta: -300 },
            { kind: 'adjust', delta: 300 },
          ]],
        ],
      },
    );
  });

  it('the same random events all at once (batched, any order): caps, cooldowns and rewards-once still hold', async () => {
    await fc.assert(
      fc.asyncProperty(hostileId, fc.array(op, { minLength: 30, maxLength: 120 }), async (u, ops) => {
        const user = unique(u);
        const device = 'd1';
        const jobs = ops.map((o, k) =>
          o.kind === 'event'
            ? tally.producer.affinityEvent({ event_id: `blk-${run}-${k}`, user_id: user, device_id: device, rule_key: o.rule, source: 'device', occurred_at: new Date(MIDNIGHT + o.at * 1000).toISOString(), metadata: { units: o.units } })
            : tally.producer.affinityAdjust({ event_id: `blk-${run}-${k}`, user_id: user, device_id: device, delta: o.delta, operator_id: 'ops', reason: 'attack' }),
        );
        const results: any[] = await Promise.all((await Promise.all(jobs)).map((job) => tally.producer.result('affinity-events', job as any)));
        const sql = world.sql;
        const log = await sql`SELECT rule_key, occurred_at, change, after, day::text AS day FROM affinity_log WHERE user_id = ${user} ORDER BY log_id`;
        expect(log.length).toBe(results.filter((r) => r.outcome === 'applied').length);
        for (const rule of ['chat']) {
          const times = log.filter((l) => l.rule_key === rule).map((l) => l.occurred_at.getTime()).sort((a, b) => a - b);
          for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(60_000);
        }
        const daily = await sql`SELECT scope, positive_sum::int AS sum FROM affinity_daily WHERE user_id = ${user}`;
        const caps: Record<string, number> = { '*': 100, chat: 20, gift: 60 };
        for (const c of daily) if (caps[c.scope] !== undefined) expect(c.sum).toBeLessThanOrEqual(caps[c.scope]!);
        // Rewards once: exactly the levels whose threshold the value ever reached, each reward one grant.
        const maxSeen = Math.max(0, ...log.map((l) => l.after as number));
        const model = new DeviceModel();
        model.maxSeen = maxSeen;
        for (const l of LEVELS) if (l.threshold > 0 && l.threshold <= maxSeen) model.rewarded.add(l.level);
        await expectRewards(user, device, model);
      }),
      { numRuns: 6 },
    );
    await expectInvariants(world.sql);
  });

  it('levels crossed several at once, decayed below and regained: each reward is granted once, ever — on confusable ids too', async () => {
    const configs = new ConfigCache();
    let day = 0;
    const shortId = fc.array(fc.constantFrom(...ID_CHARS), { minLength: 1, maxLength: 20 }).map((a) => a.join(''));
    await fc.assert(
      fc.asyncProperty(shortId, shortId, fc.array(fc.oneof(fc.integer({ min: -400, max: 400 }), fc.constant('decay' as const)), { minLength: 4, maxLength: 25 }), async (u, d, ops) => {
        // Two devices whose old reward ids (lvl-{user}-{device}-{level}) were the same.
        const user = unique(u);
        const pairs = [
          { user: `${user}-${d}`, device: 'q' },
          { user, device: `${d}-q` },
        ];
        const maxSeen = [0, 0];
        for (const [k, o] of ops.entries()) {
          if (o === 'decay') {
            // Each run 30 days further: the devices have been idle long enough to lose up to 150.
            day += 30;
            await runDecay(world.sql, configs, { now: new Date(Date.now() + day * 86_400_000) });
            continue;
          }
          for (const [p, pair] of pairs.entries()) {
            const r: any = await tally.producer.affinityAdjust({ event_id: `dec-${run}-${k}-${p}`, user_id: pair.user, device_id: pair.device, delta: o, operator_id: 'ops', reason: 'attack' }, { wait: true });
            expect(r.rewards_pending).toBeUndefined();
            maxSeen[p] = Math.max(maxSeen[p]!, r.after);
          }
        }
        for (const [p, pair] of pairs.entries()) {
          const model = new DeviceModel();
          for (const l of LEVELS) if (l.threshold > 0 && l.threshold <= maxSeen[p]!) model.rewarded.add(l.level);
          await expectRewards(pair.user, pair.device, model);
        }
      }),
      { numRuns: 8, examples: [['u@1', 'd-1', [250, 'decay', 'decay', 300, 'decay', 'decay', 'decay', 400, -400, 950]]] },
    );
    // The example above decayed a device below levels it had reached and brought it back.
    const [regained] = await world.sql`
      SELECT count(*)::int AS n FROM outbox WHERE type = 'level_up' AND user_id LIKE '%-u@1'`;
    expect(regained!.n).toBeGreaterThanOrEqual(2);
    expect((await world.sql`SELECT count(*)::int AS n FROM affinity_log WHERE kind = 'decay'`)[0]!.n).toBeGreaterThan(0);
    await expectInvariants(world.sql);
  });
});

async function expectModelState(user: string, device: string, model: DeviceModel): Promise<void> {
  const [row] = await world.sql`SELECT value, level FROM affinity_devices WHERE user_id = ${user} AND device_id = ${device}`;
  expect(row).toEqual({ value: model.value, level: model.level() });
  const daily = await world.sql`SELECT (day - DATE '1970-01-01') AS day, scope, positive_sum::int AS sum FROM affinity_daily WHERE user_id = ${user} AND device_id = ${device}`;
  expect(new Map(daily.map((r) => [`${r.day}|${r.scope}`, r.sum]))).toEqual(new Map([...model.daily].filter(([, v]) => v > 0)));
  await expectRewards(user, device, model);
}

/** Exactly the model's rewarded levels are marked, each of their rewards is one grant, and balances add up. */
async function expectRewards(user: string, device: string, model: DeviceModel): Promise<void> {
  const sql = world.sql;
  const marked = await sql`SELECT level FROM affinity_granted_levels WHERE user_id = ${user} AND device_id = ${device} ORDER BY level`;
  expect(marked.map((r) => r.level)).toEqual([...model.rewarded].sort((a, b) => a - b));
  const want = new Map<string, number>();
  let count = 0;
  for (const l of LEVELS) {
    if (!model.rewarded.has(l.level)) continue;
    for (const r of l.rewards) {
      want.set(r.asset, (want.get(r.asset) ?? 0) + r.amount);
      count++;
    }
  }
  const entries = await sql`SELECT event_id FROM ledger_entries WHERE user_id = ${user} AND kind = 'grant'`;
  expect(entries).toHaveLength(count);
  expect(new Set(entries.map((e) => e.event_id)).size).toBe(count);
  const accounts = await sql`SELECT asset, balance::int AS balance FROM accounts WHERE user_id = ${user} AND balance <> 0`;
  expect(new Map(accounts.map((a) => [a.asset, a.balance]))).toEqual(want);
}
