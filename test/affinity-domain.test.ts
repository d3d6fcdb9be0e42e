import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { naturalDay } from '../src/domain/calendar.ts';
import { crossedLevels, dayKey, decideDecay, decideEvent, levelFor, progressOf, ruleAmount, type EventInput, type LevelLike } from '../src/domain/affinity.ts';

const levels = [
  { level: 1, threshold: 0, rewards: [] },
  { level: 2, threshold: 100, rewards: [{ asset: 'points', amount: 50 }] },
  { level: 3, threshold: 200, rewards: [{ asset: 'points', amount: 70 }] },
  { level: 4, threshold: 300, rewards: [] },
];
const chat = { delta: 2, cooldown_seconds: 60, daily_cap: 20, single_cap: 10, per_unit: false, enabled: true };
const base: EventInput = {
  deviceActive: true, rule: chat, units: 1, occurredAt: 1_000_000, appliedAt: [], ruleUsedToday: 0, globalUsedToday: 0,
  globalDailyCap: 100, value: 0, maxAffinity: 1000,
};

describe('affinity domain: natural days', () => {
  it('00:00 Asia/Shanghai is 16:00 UTC the day before', () => {
    expect(dayKey(Date.parse('2026-03-01T15:59:59.999Z'), 'Asia/Shanghai')).toBe('2026-03-01');
    expect(dayKey(Date.parse('2026-03-01T16:00:00Z'), 'Asia/Shanghai')).toBe('2026-03-02');
  });
  it('follows DST: New York midnight is 05:00 UTC in winter and 04:00 UTC in summer', () => {
    expect(dayKey(Date.parse('2026-01-15T04:59:59Z'), 'America/New_York')).toBe('2026-01-14');
    expect(dayKey(Date.parse('2026-01-15T05:00:00Z'), 'America/New_York')).toBe('2026-01-15');
    expect(dayKey(Date.parse('2026-07-15T03:59:59Z'), 'America/New_York')).toBe('2026-07-14');
    expect(dayKey(Date.parse('2026-07-15T04:00:00Z'), 'America/New_York')).toBe('2026-07-15');
    // The 23-hour day of the spring change (2026-03-08) starts at 05:00 UTC and ends at 04:00 UTC.
    expect(dayKey(Date.parse('2026-03-08T05:00:00Z'), 'America/New_York')).toBe('2026-03-08');
    expect(dayKey(Date.parse('2026-03-09T03:59:59Z'), 'America/New_York')).toBe('2026-03-08');
    expect(dayKey(Date.parse('2026-03-09T04:00:00Z'), 'America/New_York')).toBe('2026-03-09');
  });
});

describe('natural days: one implementation for affinity and reward caps', () => {
  it('dayKey agrees with the zone’s own local date at any instant, in zones with and without DST', () => {
    const zones = ['Asia/Shanghai', 'America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'Pacific/Kiritimati', 'UTC'];
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2090, 0, 1) }), fc.constantFrom(...zones), (ms, zone) => {
        const local = new Date(new Date(ms).toLocaleString('en-US', { timeZone: zone }) + ' UTC');
        expect(dayKey(ms, zone)).toBe(local.toISOString().slice(0, 10));
        expect(naturalDay(ms, zone)).toBe(dayKey(ms, zone));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('affinity domain: the rule pipeline', () => {
  it('a deactivated device: noop_device_inactive before anything else', () => {
    expect(decideEvent({ ...base, deviceActive: false })).toEqual({ outcome: 'noop_device_inactive', change: 0 });
    expect(decideEvent({ ...base, deviceActive: false, rule: undefined })).toEqual({ outcome: 'noop_device_inactive', change: 0 });
    expect(decideEvent({ ...base, deviceActive: false, appliedAt: [base.occurredAt] })).toEqual({ outcome: 'noop_device_inactive', change: 0 });
  });
  it('no rule or a disabled rule', () => {
    expect(decideEvent({ ...base, rule: undefined }).outcome).toBe('noop_no_rule');
    expect(decideEvent({ ...base, rule: { ...chat, enabled: false } }).outcome).toBe('noop_no_rule');
  });
  it('cooldown is measured from the last applied event; 0 means none', () => {
    expect(decideEvent({ ...base, appliedAt: [base.occurredAt - 59_999] }).outcome).toBe('noop_cooldown');
    expect(decideEvent({ ...base, appliedAt: [base.occurredAt - 60_000] }).outcome).toBe('applied');
    expect(decideEvent({ ...base, rule: { ...chat, cooldown_seconds: 0 }, appliedAt: [base.occurredAt] }).outcome).toBe('applied');
    // A late event is judged against the applied events around it, not only the latest.
    expect(decideEvent({ ...base, appliedAt: [base.occurredAt + 120_000, base.occurredAt - 30_000] }).outcome).toBe('noop_cooldown');
    expect(decideEvent({ ...base, appliedAt: [base.occurredAt + 120_000, base.occurredAt - 60_000] }).outcome).toBe('applied');
  });
  it('per-unit amounts are clamped to single_cap', () => {
    const gift = { delta: 15, per_unit: true, single_cap: 45, cooldown_seconds: 0, daily_cap: 60, enabled: true };
    expect(ruleAmount(gift, 2)).toBe(30);
    expect(ruleAmount(gift, 5)).toBe(45);
    expect(ruleAmount({ ...chat, delta: -30, single_cap: 10 }, 1)).toBe(-10);
  });
  it('daily caps cut the change to what is left, then refuse', () => {
    expect(decideEvent({ ...base, ruleUsedToday: 19 })).toEqual({ outcome: 'applied', change: 1 });
    expect(decideEvent({ ...base, ruleUsedToday: 20 })).toEqual({ outcome: 'noop_rule_daily_cap', change: 0 });
    expect(decideEvent({ ...base, globalUsedToday: 99 })).toEqual({ outcome: 'applied', change: 1 });
    expect(decideEvent({ ...base, globalUsedToday: 100 })).toEqual({ outcome: 'noop_global_daily_cap', change: 0 });
  });
  it('negative rules are never capped, and clamp at 0', () => {
    const rude = { delta: -10, cooldown_seconds: 0, per_unit: false, enabled: true, daily_cap: 1 };
    expect(decideEvent({ ...base, rule: rude, value: 50, ruleUsedToday: 99, globalUsedToday: 999 })).toEqual({ outcome: 'applied', change: -10 });
    expect(decideEvent({ ...base, rule: rude, value: 4 })).toEqual({ outcome: 'applied', change: -4 });
    expect(decideEvent({ ...base, rule: rude, value: 0 })).toEqual({ outcome: 'noop_value_boundary', change: 0 });
  });
  it('caps bound gains only: a rule worth nothing is not refused by a cap that has room', () => {
    const nothing = { ...chat, delta: 0 };
    expect(decideEvent({ ...base, rule: nothing })).toEqual({ outcome: 'noop_value_boundary', change: 0 });
    expect(decideEvent({ ...base, rule: { ...nothing, daily_cap: undefined } })).toEqual({ outcome: 'noop_value_boundary', change: 0 });
  });
  it('clamps at max_affinity', () => {
    expect(decideEvent({ ...base, value: 999 })).toEqual({ outcome: 'applied', change: 1 });
    expect(decideEvent({ ...base, value: 1000 })).toEqual({ outcome: 'noop_value_boundary', change: 0 });
    // max_affinity lowered below a stored value: a gain changes nothing rather than cutting the value.
    expect(decideEvent({ ...base, value: 1200 })).toEqual({ outcome: 'noop_value_boundary', change: 0 });
  });
});

describe('affinity domain: levels', () => {
  it('level = highest threshold ≤ value; a jump crosses every level between', () => {
    expect(levelFor(levels, 0)).toBe(1);
    expect(levelFor(levels, 199)).toBe(2);
    expect(levelFor(levels, 300)).toBe(4);
    expect(crossedLevels(levels, 50, 300).map((l) => l.level)).toEqual([2, 3, 4]);
    expect(crossedLevels(levels, 100, 150)).toEqual([]);
    expect(crossedLevels(levels, 300, 50)).toEqual([]);
  });
  it('levels may come in any order; at one threshold the higher level counts, and a jump crosses both lowest first', () => {
    const shuffled = [levels[2]!, levels[0]!, levels[3]!, levels[1]!];
    expect(levelFor(shuffled, 199)).toBe(2);
    expect(crossedLevels(shuffled, 50, 300).map((l) => l.level)).toEqual([2, 3, 4]);
    expect(progressOf(shuffled, 150)).toEqual({ value: 150, level: 2, next_level: 3, next_threshold: 200, progress: 0.5 });
    const twins = [{ level: 6, threshold: 100, rewards: [] }, { level: 5, threshold: 100, rewards: [] }, { level: 1, threshold: 0, rewards: [] }];
    expect(levelFor(twins, 100)).toBe(6);
    expect(crossedLevels(twins, 0, 100).map((l) => l.level)).toEqual([5, 6]);
  });
  it('property: a level table means the same in any order', () => {
    const table = fc.uniqueArray(fc.record({ level: fc.integer({ min: 0, max: 20 }), threshold: fc.integer({ min: 0, max: 500 }), rewards: fc.constant<LevelLike['rewards']>([]) }), {
      selector: (l) => l.level,
      maxLength: 6,
    });
    fc.assert(
      fc.property(table, fc.integer({ min: 0, max: 600 }), fc.integer({ min: 0, max: 600 }), (t, a, b) => {
        const sorted = [...t].sort((x, y) => x.threshold - y.threshold || x.level - y.level);
        // The model: walk the table in order; the last level reached counts.
        let level = 0;
        for (const l of sorted) if (l.threshold <= a) level = l.level;
        expect(levelFor(t, a)).toBe(level);
        expect(crossedLevels(t, a, b)).toEqual(sorted.filter((l) => a < l.threshold && l.threshold <= b));
        expect(progressOf(t, a).level).toBe(level);
      }),
    );
  });
  it('progress at a threshold is 0 towards the next; below every threshold it is level 0 on the way to the first', () => {
    expect(progressOf(levels, 100)).toEqual({ value: 100, level: 2, next_level: 3, next_threshold: 200, progress: 0 });
    const fromTen = [{ level: 1, threshold: 10, rewards: [] }];
    expect(progressOf(fromTen, 5)).toEqual({ value: 5, level: 0, next_level: 1, next_threshold: 10, progress: 0.5 });
  });
  it('progress towards the next level', () => {
    expect(progressOf(levels, 150)).toEqual({ value: 150, level: 2, next_level: 3, next_threshold: 200, progress: 0.5 });
    expect(progressOf(levels, 350)).toEqual({ value: 350, level: 4, next_level: null, next_threshold: null, progress: 1 });
  });
});

describe('affinity domain: decay', () => {
  const d = { value: 100, lastActiveDay: '2026-03-01', decayedThrough: null, afterIdleDays: 3, perDay: 5, floor: 0 };
  it('charges only ended days: after_idle_days 3 and a last event on 03-01 → the first decay on 03-06 (contract v2 §6)', () => {
    // 03-02, 03-03, 03-04 are the three free idle days; 03-05 is the fourth, charged once it has ended.
    expect(decideDecay({ ...d, today: '2026-03-04' })).toEqual({ days: 0, change: 0, through: null });
    expect(decideDecay({ ...d, today: '2026-03-05' })).toEqual({ days: 0, change: 0, through: null });
    expect(decideDecay({ ...d, today: '2026-03-06' })).toEqual({ days: 1, change: -5, through: '2026-03-05' });
    expect(decideDecay({ ...d, today: '2026-03-08' })).toEqual({ days: 3, change: -15, through: '2026-03-07' });
  });
  it('after_idle_days 0: the day after the last active day is charged once it has ended', () => {
    expect(decideDecay({ ...d, afterIdleDays: 0, today: '2026-03-02' }).days).toBe(0);
    expect(decideDecay({ ...d, afterIdleDays: 0, today: '2026-03-03' })).toEqual({ days: 1, change: -5, through: '2026-03-02' });
  });
  it('each day decays once: a second run the same day, or a late older event, adds nothing', () => {
    expect(decideDecay({ ...d, decayedThrough: '2026-03-07', today: '2026-03-08' }).days).toBe(0);
    expect(decideDecay({ ...d, decayedThrough: '2026-03-07', today: '2026-03-09' })).toEqual({ days: 1, change: -5, through: '2026-03-08' });
    // decayed_through written by the old rule (the then current day) is never charged again.
    expect(decideDecay({ ...d, decayedThrough: '2026-03-08', today: '2026-03-09' }).days).toBe(0);
  });
  it('renewed activity restarts the free idle days', () => {
    expect(decideDecay({ ...d, lastActiveDay: '2026-03-10', decayedThrough: '2026-03-07', today: '2026-03-14' }).days).toBe(0);
    expect(decideDecay({ ...d, lastActiveDay: '2026-03-10', decayedThrough: '2026-03-07', today: '2026-03-15' })).toEqual({ days: 1, change: -5, through: '2026-03-14' });
  });
  it('never below the floor', () => {
    expect(decideDecay({ ...d, value: 12, floor: 10, today: '2026-03-20' })).toMatchObject({ change: -2 });
    expect(decideDecay({ ...d, value: 8, floor: 10, today: '2026-03-20' })).toMatchObject({ change: 0 });
  });
});

describe('affinity domain: decay against a day-by-day model (fast-check)', () => {
  // The model shares nothing with src/domain: days are integers (0 = 2026-01-01), walked one at a time.
  const EPOCH = Date.UTC(2026, 0, 1);
  const iso = (n: number) => new Date(EPOCH + n * 86_400_000).toISOString().slice(0, 10);
  /** Walks every ended day after the last active one; the n-th whole idle day with n > afterIdle costs perDay once. */
  function model(m: M) {
    let value = m.value;
    let days = 0;
    let through = m.through;
    for (let day = m.last + 1; day < m.today; day++) {
      if (day - m.last <= m.afterIdle) continue;
      if (m.through !== null && day <= m.through) continue;
      days++;
      through = day;
      if (value > m.floor) value = Math.max(m.floor, value - m.perDay);
    }
    return { days, change: value - m.value, through };
  }
  const arb = fc.record({
    value: fc.integer({ min: 0, max: 500 }),
    last: fc.integer({ min: 0, max: 60 }),
    through: fc.option(fc.integer({ min: 0, max: 90 }), { nil: null }),
    today: fc.integer({ min: 0, max: 120 }),
    afterIdle: fc.integer({ min: 0, max: 10 }),
    perDay: fc.integer({ min: 0, max: 30 }),
    floor: fc.integer({ min: 0, max: 100 }),
  });
  type M = { value: number; last: number; through: number | null; today: number; afterIdle: number; perDay: number; floor: number };
  const input = (m: M, today: number, through: number | null) => ({
    value: m.value, lastActiveDay: iso(m.last), decayedThrough: through === null ? null : iso(through), today: iso(today),
    afterIdleDays: m.afterIdle, perDay: m.perDay, floor: m.floor,
  });

  it('decides exactly what the model decides', () => {
    fc.assert(
      fc.property(arb, (m) => {
        const got = decideDecay(input(m, m.today, m.through));
        const want = model(m);
        expect(got.days).toBe(want.days);
        expect(got.change).toBe(want.change);
        if (want.days > 0) expect(got.through).toBe(iso(want.through!));
        else expect(got.through).toBe(m.through === null ? null : iso(m.through));
      }),
      { numRuns: 2000 },
    );
  });

  it('never charges the current day, and runs on any later days add up to one run at the end', () => {
    fc.assert(
      fc.property(arb, fc.array(fc.integer({ min: 0, max: 120 }), { maxLength: 6 }), (m, runs) => {
        let value = m.value;
        let through = m.through === null ? null : iso(m.through);
        let days = 0;
        const todays = [...runs, m.today].sort((a, b) => a - b);
        for (const today of todays) {
          const d = decideDecay({ ...input(m, today, null), value, decayedThrough: through });
          if (d.days > 0) expect(d.through! < iso(today)).toBe(true);
          value += d.change;
          days += d.days;
          through = d.through;
        }
        const once = model({ ...m, today: todays.at(-1)! });
        expect(days).toBe(once.days);
        expect(value - m.value).toBe(once.change);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('affinity domain: properties over random days of events (fast-check)', () => {
  const ruleArb = fc.record({
    delta: fc.integer({ min: -30, max: 30 }).filter((d) => d !== 0),
    cooldown_seconds: fc.constantFrom(0, 1, 30, 60),
    daily_cap: fc.option(fc.integer({ min: 0, max: 80 }), { nil: undefined }),
    single_cap: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
    per_unit: fc.boolean(),
    enabled: fc.constant(true),
  });
  const dayArb = fc.record({
    rules: fc.array(ruleArb, { minLength: 1, maxLength: 4 }),
    globalDailyCap: fc.option(fc.integer({ min: 0, max: 150 }), { nil: undefined }),
    maxAffinity: fc.integer({ min: 1, max: 300 }),
    start: fc.integer({ min: 0, max: 300 }),
    // [which rule, seconds since the previous event, units]
    events: fc.array(fc.tuple(fc.nat(3), fc.integer({ min: 0, max: 90 }), fc.integer({ min: 1, max: 5 })), { maxLength: 80 }),
  });

  it('caps, single caps, cooldowns and [0, max] hold whatever the sequence', () => {
    fc.assert(
      fc.property(dayArb, (day) => {
        let value = Math.min(day.start, day.maxAffinity);
        let at = 1_000_000_000;
        let globalUsed = 0;
        const ruleUsed = day.rules.map(() => 0);
        const applied: number[][] = day.rules.map(() => []);
        for (const [which, gap, units] of day.events) {
          const r = which % day.rules.length;
          const rule = day.rules[r]!;
          at += gap * 1000;
          const d = decideEvent({
            deviceActive: true, rule, units, occurredAt: at, appliedAt: applied[r]!, ruleUsedToday: ruleUsed[r]!, globalUsedToday: globalUsed,
            globalDailyCap: day.globalDailyCap, value, maxAffinity: day.maxAffinity,
          });
          if (d.outcome !== 'applied') {
            expect(d.change).toBe(0);
            continue;
          }
          expect(d.change).not.toBe(0);
          expect(Math.sign(d.change)).toBe(Math.sign(rule.delta)); // a cap or clamp never turns a change around
          if (rule.single_cap !== undefined) expect(Math.abs(d.change)).toBeLessThanOrEqual(rule.single_cap);
          if (rule.cooldown_seconds > 0) for (const t of applied[r]!) expect(at - t).toBeGreaterThanOrEqual(rule.cooldown_seconds * 1000);
          value += d.change;
          applied[r]!.push(at);
          if (d.change > 0) {
            ruleUsed[r]! += d.change;
            globalUsed += d.change;
          }
          expect(value).toBeGreaterThanOrEqual(0);
          expect(value).toBeLessThanOrEqual(day.maxAffinity);
          if (rule.daily_cap !== undefined) expect(ruleUsed[r]).toBeLessThanOrEqual(rule.daily_cap);
          if (day.globalDailyCap !== undefined) expect(globalUsed).toBeLessThanOrEqual(day.globalDailyCap);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a rule that still has room, out of cooldown and below max, is never refused', () => {
    fc.assert(
      fc.property(ruleArb.filter((r) => r.delta > 0), fc.integer({ min: 1, max: 5 }), (rule, units) => {
        const d = decideEvent({ deviceActive: true, rule, units, occurredAt: 0, appliedAt: [], ruleUsedToday: 0, globalUsedToday: 0, globalDailyCap: undefined, value: 0, maxAffinity: 10_000 });
        const room = rule.daily_cap === undefined ? Infinity : rule.daily_cap;
        if (room > 0) expect(d).toEqual({ outcome: 'applied', change: Math.min(ruleAmount(rule, units), room) });
        else expect(d.outcome).toBe('noop_rule_daily_cap');
      }),
    );
  });
});
