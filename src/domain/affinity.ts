/**
 * The affinity rules as plain functions, no I/O: amounts, cooldowns, caps, clamping, levels, natural days, decay.
 * The apply transaction (src/affinity/apply.ts) feeds them the locked state and writes what they decide.
 */
import { addDays, dayKey, daysBetween } from './calendar.ts';

export type AffinityOutcome =
  | 'applied'
  | 'noop_device_inactive'
  | 'noop_no_rule'
  | 'noop_cooldown'
  | 'noop_rule_daily_cap'
  | 'noop_global_daily_cap'
  | 'noop_value_boundary';

export interface RuleLike {
  delta: number;
  cooldown_seconds: number;
  daily_cap?: number | undefined;
  single_cap?: number | undefined;
  per_unit: boolean;
  enabled: boolean;
}

export interface LevelLike {
  level: number;
  threshold: number;
  rewards: { asset: string; amount: number }[];
}

// Natural days live in calendar.ts (shared with the ledger's reward caps); re-exported for the affinity callers.
export { addDays, dayKey, daysBetween };

// ---- one rule event ----------------------------------------------------------------------------------

/** Step 4: the rule's delta (× units for per-unit rules), its magnitude clamped to single_cap. */
export function ruleAmount(rule: RuleLike, units: number): number {
  const raw = rule.per_unit ? rule.delta * units : rule.delta;
  if (rule.single_cap === undefined) return raw;
  return Math.sign(raw) * Math.min(Math.abs(raw), rule.single_cap);
}

/**
 * Step 3: within cooldown_seconds of an applied event of the rule, on either side — so a late event (one that
 * occurred before the latest applied) is judged against its own neighbours, and applied events of a rule
 * are always at least cooldown_seconds apart, whatever order they were processed in.
 */
export function inCooldown(cooldownSeconds: number, appliedAt: readonly number[], occurredAt: number): boolean {
  // Stryker: equivalent — a shortcut: with cooldown ≤ 0 no distance is `< cooldown` below anyway (`< 0`, false).
  if (cooldownSeconds <= 0) return false;
  return appliedAt.some((t) => Math.abs(occurredAt - t) < cooldownSeconds * 1000);
}

/**
 * Clamps `before + change` to [0, max]: the change actually applied. A clamp never turns a change around:
 * a value above a max_affinity lowered since stays put on a gain instead of being cut down to it.
 */
export function clampChange(before: number, change: number, max: number): number {
  // Stryker: `>= 0` equivalent — a change of 0 applies 0 on either branch (values are never negative).
  if (change > 0) return Math.max(0, Math.min(before + change, max) - before);
  return Math.max(before + change, 0) - before;
}

export interface EventInput {
  /** false when an admin deactivated the device. */
  deviceActive: boolean;
  rule: RuleLike | undefined;
  units: number;
  occurredAt: number;
  /** When applied events of the rule near occurredAt occurred (at least the latest one, if any). */
  appliedAt: readonly number[];
  /** Positive change already counted today, for this rule and for all rules. */
  ruleUsedToday: number;
  globalUsedToday: number;
  globalDailyCap: number | undefined;
  value: number;
  maxAffinity: number;
}

export interface EventDecision {
  outcome: AffinityOutcome;
  change: number;
}

/**
 * Steps 2–7 of the pipeline, in order; the first that leaves nothing decides the outcome. A deactivated device
 * comes first: whatever the rule, nothing it sends counts.
 */
export function decideEvent(i: EventInput): EventDecision {
  const noop = (outcome: AffinityOutcome): EventDecision => ({ outcome, change: 0 });
  if (!i.deviceActive) return noop('noop_device_inactive');
  if (!i.rule || !i.rule.enabled) return noop('noop_no_rule');
  if (inCooldown(i.rule.cooldown_seconds, i.appliedAt, i.occurredAt)) return noop('noop_cooldown');
  let amount = ruleAmount(i.rule, i.units);
  // Negative rules are never capped: caps bound what a user can gain per day.
  if (amount > 0 && i.rule.daily_cap !== undefined) {
    amount = Math.min(amount, Math.max(0, i.rule.daily_cap - i.ruleUsedToday));
    if (amount === 0) return noop('noop_rule_daily_cap');
  }
  if (amount > 0 && i.globalDailyCap !== undefined) {
    amount = Math.min(amount, Math.max(0, i.globalDailyCap - i.globalUsedToday));
    if (amount === 0) return noop('noop_global_daily_cap');
  }
  const change = clampChange(i.value, amount, i.maxAffinity);
  if (change === 0) return noop('noop_value_boundary');
  return { outcome: 'applied', change };
}

// ---- levels ------------------------------------------------------------------------------------------

function byThreshold(levels: LevelLike[]): LevelLike[] {
  return [...levels].sort((a, b) => a.threshold - b.threshold || a.level - b.level);
}

/** The level of a value: the one with the highest threshold ≤ value (0 when no threshold is reached). */
export function levelFor(levels: LevelLike[], value: number): number {
  let level = 0;
  for (const l of byThreshold(levels)) if (l.threshold <= value) level = l.level;
  return level;
}

/** Levels whose threshold a rise from `before` to `after` crosses, lowest first (each earns its rewards). */
export function crossedLevels(levels: LevelLike[], before: number, after: number): LevelLike[] {
  if (after <= before) return []; // Stryker: equivalent — a shortcut; the filter below finds nothing then (false, `<`)
  return byThreshold(levels).filter((l) => l.threshold > before && l.threshold <= after);
}

export interface Progress {
  value: number;
  level: number;
  next_level: number | null;
  next_threshold: number | null;
  /** 0–1 of the way from the current level's threshold to the next; 1 at the top level. */
  progress: number;
}

export function progressOf(levels: LevelLike[], value: number): Progress {
  const sorted = byThreshold(levels);
  const current = [...sorted].reverse().find((l) => l.threshold <= value);
  const next = sorted.find((l) => l.threshold > value);
  const level = current?.level ?? 0;
  if (!next) return { value, level, next_level: null, next_threshold: null, progress: 1 };
  const from = current?.threshold ?? 0;
  const span = next.threshold - from;
  // Stryker: equivalent — span > 0 always (next.threshold > value ≥ from, thresholds and values ≥ 0): a guard
  // against dividing by zero that never fires (false, `< 0`).
  const progress = span <= 0 ? 0 : Math.min(1, Math.max(0, (value - from) / span));
  return { value, level, next_level: next.level, next_threshold: next.threshold, progress: Math.round(progress * 1e4) / 1e4 };
}

// ---- decay -------------------------------------------------------------------------------------------

export interface DecayInput {
  value: number;
  /** Natural day of the last applied event, and the last day decay was applied for (null = never). */
  lastActiveDay: string;
  decayedThrough: string | null;
  /** The current natural day: it has not ended, so it is never charged (contract v2 §6). */
  today: string;
  afterIdleDays: number;
  perDay: number;
  floor: number;
}

export interface DecayDecision {
  /** Idle days newly decayed (caught up if runs were missed). */
  days: number;
  change: number;
  /** The last day decay is now applied for (unchanged when nothing was due): always a day that has ended. */
  through: string | null;
}

/**
 * A device idle for more than `afterIdleDays` whole days loses `perDay` for each further idle day. A day counts
 * only once it has ended: the days lastActive + afterIdleDays + 1 … yesterday each decay once ever, so a second
 * run on the same day finds nothing. Example (after_idle_days 3): last active 03-01 → 03-02…03-04 are free,
 * 03-05 is the first charged, on or after 03-06 00:00. Never takes the value below `floor` (and never raises a
 * value already below it).
 */
export function decideDecay(d: DecayInput): DecayDecision {
  const lastEnded = addDays(d.today, -1);
  const firstDue = addDays(d.lastActiveDay, d.afterIdleDays + 1);
  const from = d.decayedThrough && d.decayedThrough >= firstDue ? addDays(d.decayedThrough, 1) : firstDue;
  const days = daysBetween(from, lastEnded) + 1;
  if (days <= 0) return { days: 0, change: 0, through: d.decayedThrough };
  const loss = d.value <= d.floor ? 0 : Math.min(d.value - d.floor, days * d.perDay); // Stryker: `<` equivalent (0 either way)
  return { days, change: loss === 0 ? 0 : -loss, through: lastEnded };
}
