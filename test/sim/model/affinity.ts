/**
 * One device's affinity in the model, as plain data. Written from CONTRACT §3 (affinity-events), §6 (rules,
 * levels, decay, with the v2 worked example) and the README's rule pipeline, which documents the order of
 * the checks and the decisions the contract left open (listed in docs/simulation.md).
 */
import type { AffinityRule, ConfigDoc, Level } from './config.ts';
import { affinityTimezoneOf, levelsOf, maxAffinityOf } from './config.ts';
import { dayNumber, dayOf } from './days.ts';

export interface Device {
  value: number;
  /** occurred_at of the latest applied rule event or adjust (README: what idleness counts from). */
  lastActive: number | null;
  /** The last idle day (day number) decay was applied for. */
  decayedThrough: number | null;
  /** Per rule: occurred_at of every applied event (cooldowns look both ways, README). */
  applied: Record<string, number[]>;
  /** Positive change applied per `day|scope` (scope: rule key, or `*` for all rules). */
  daily: Record<string, number>;
  /** Levels whose rewards were granted: each level rewards once ever. */
  rewarded: number[];
}

export const newDevice = (): Device => ({ value: 0, lastActive: null, decayedThrough: null, applied: {}, daily: {}, rewarded: [] });

export type AffinityOutcome =
  | 'applied'
  | 'noop_no_rule'
  | 'noop_cooldown'
  | 'noop_rule_daily_cap'
  | 'noop_global_daily_cap'
  | 'noop_value_boundary';

/** The level of a value: the one with the highest threshold ≤ value. */
export function levelOf(levels: Level[], value: number): number {
  let best: Level | undefined;
  for (const l of levels) if (l.threshold <= value && (!best || l.threshold > best.threshold)) best = l;
  return best?.level ?? 0;
}

/** §5 affinity read: the next level above the value, if any. */
export function nextLevelOf(levels: Level[], value: number): Level | undefined {
  let next: Level | undefined;
  for (const l of levels) if (l.threshold > value && (!next || l.threshold < next.threshold)) next = l;
  return next;
}

/** README clamp: [0, max], and a clamp never turns a change around. */
function clamp(before: number, change: number, max: number): number {
  if (change > 0) return Math.max(0, Math.min(before + change, max) - before);
  return Math.max(before + change, 0) - before;
}

/**
 * The README pipeline, steps 2–7, for an `affinity.event`: rule → cooldown → amount (× units, |amount| ≤
 * single_cap) → per-rule daily cap → global daily cap (positive amounts only) → clamp. Returns the change
 * to apply (0 with a noop outcome). Does not change the device.
 */
export function decideEvent(dev: Device, doc: ConfigDoc, ruleKey: string, units: number, occurredAt: number): { outcome: AffinityOutcome; change: number } {
  const rule: AffinityRule | undefined = doc.affinity?.rules?.[ruleKey];
  if (!rule || rule.enabled === false) return { outcome: 'noop_no_rule', change: 0 };
  const cooldownMs = (rule.cooldown_seconds ?? 0) * 1000;
  if (cooldownMs > 0 && (dev.applied[ruleKey] ?? []).some((t) => Math.abs(occurredAt - t) < cooldownMs)) {
    return { outcome: 'noop_cooldown', change: 0 };
  }
  let amount = rule.per_unit ? rule.delta * units : rule.delta;
  if (rule.single_cap !== undefined) amount = Math.sign(amount) * Math.min(Math.abs(amount), rule.single_cap);
  const day = dayOf(occurredAt, affinityTimezoneOf(doc));
  if (amount > 0 && rule.daily_cap !== undefined) {
    amount = Math.min(amount, Math.max(0, rule.daily_cap - (dev.daily[`${day}|${ruleKey}`] ?? 0)));
    if (amount === 0) return { outcome: 'noop_rule_daily_cap', change: 0 };
  }
  const globalCap = doc.affinity?.settings?.global_daily_cap;
  if (amount > 0 && globalCap !== undefined) {
    amount = Math.min(amount, Math.max(0, globalCap - (dev.daily[`${day}|*`] ?? 0)));
    if (amount === 0) return { outcome: 'noop_global_daily_cap', change: 0 };
  }
  const change = clamp(dev.value, amount, maxAffinityOf(doc));
  return change === 0 ? { outcome: 'noop_value_boundary', change: 0 } : { outcome: 'applied', change };
}

/** §3 affinity.adjust: no rule, cooldown or caps; still clamped to [0, max_affinity]. */
export function decideAdjust(dev: Device, doc: ConfigDoc, delta: number): { outcome: AffinityOutcome; change: number } {
  const change = clamp(dev.value, delta, maxAffinityOf(doc));
  return change === 0 ? { outcome: 'noop_value_boundary', change: 0 } : { outcome: 'applied', change };
}

/**
 * Applies a decided change: value, activity, counters (rule events only; README: daily counters hold the
 * positive change applied, admin adjusts are not counted) — and returns the levels crossed for the first
 * time ever (before < threshold ≤ after), whose rewards are granted now.
 */
export function applyChange(dev: Device, doc: ConfigDoc, change: number, occurredAt: number, ruleKey: string | null): Level[] {
  const before = dev.value;
  dev.value += change;
  dev.lastActive = Math.max(dev.lastActive ?? occurredAt, occurredAt);
  if (ruleKey !== null) {
    (dev.applied[ruleKey] ??= []).push(occurredAt);
    if (change > 0) {
      const day = dayOf(occurredAt, affinityTimezoneOf(doc));
      for (const scope of [ruleKey, '*']) dev.daily[`${day}|${scope}`] = (dev.daily[`${day}|${scope}`] ?? 0) + change;
    }
  }
  if (change <= 0) return [];
  const crossed = levelsOf(doc)
    .filter((l) => l.threshold > before && l.threshold <= dev.value && !dev.rewarded.includes(l.level))
    .sort((x, y) => x.threshold - y.threshold);
  for (const l of crossed) dev.rewarded.push(l.level);
  return crossed;
}

/**
 * §6 decay (v2): idle by the occurred_at of the last applied event; a day counts as idle only once it has
 * ended (in the affinity timezone). After more than `after_idle_days` whole idle days, each further ended idle
 * day costs `per_day`, once ever (missed days are caught up), never below `floor`. Worked example: last event
 * 03-01 23:50, after 3 → idle 03-02, 03-03, 03-04; 03-05 once it ends is the 4th: first decay on or after
 * 03-06 00:00. Returns the change (≤ 0).
 */
export function decay(dev: Device, doc: ConfigDoc, now: number): number {
  const d = doc.affinity?.settings?.decay;
  if (!d || d.per_day === 0 || dev.lastActive === null) return 0;
  const floor = d.floor ?? 0;
  if (dev.value <= floor) return 0;
  const tz = affinityTimezoneOf(doc);
  const lastEnded = dayNumber(dayOf(now, tz)) - 1;
  const firstDue = dayNumber(dayOf(dev.lastActive, tz)) + d.after_idle_days + 1;
  const from = dev.decayedThrough !== null && dev.decayedThrough >= firstDue ? dev.decayedThrough + 1 : firstDue;
  const days = lastEnded - from + 1;
  if (days <= 0) return 0;
  const change = -Math.min(dev.value - floor, days * d.per_day);
  dev.value += change;
  dev.decayedThrough = lastEnded;
  return change;
}
