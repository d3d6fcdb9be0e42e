/**
 * Pricing (CONTRACT §3 charges, §4 quotes and holds, §6): fixed, duration, tokens, free. The cost is rounded
 * up once, on the exact total, and never falls below `min_points`. A cost of 0 is `noop_free` (README).
 */
import type { PriceRule } from './config.ts';
import { ceil, decimal, over, plus, times, whole } from './exact.ts';

export interface Usage {
  seconds?: number;
  input_seconds?: number;
  char_count?: number;
  input_tokens?: number;
  output_tokens?: number;
  model?: string;
}

/** A price, or why the usage cannot be priced (the event is bad input: invalid_payload). */
export type Priced = { cost: bigint } | { error: string };

const atLeast = (cost: bigint, min: number | undefined): bigint => (cost < BigInt(min ?? 0) ? BigInt(min ?? 0) : cost);

function duration(rule: Extract<PriceRule, { mode: 'duration' }>, seconds: number | ReturnType<typeof decimal>): bigint {
  const s = typeof seconds === 'number' ? decimal(seconds) : seconds;
  const total = rule.divisor !== undefined ? over(s, decimal(rule.divisor)) : times(s, decimal(rule.multiplier!));
  return atLeast(ceil(total), rule.min_points);
}

/** What work that was done costs. */
export function price(rule: PriceRule, usage: Usage | undefined): Priced {
  switch (rule.mode) {
    case 'free':
      return { cost: 0n };
    case 'fixed':
      return { cost: atLeast(BigInt(rule.points), rule.min_points) };
    case 'duration':
      if (usage?.seconds === undefined) return { error: 'duration pricing needs usage.seconds' };
      return { cost: duration(rule, usage.seconds) };
    case 'tokens': {
      if (!usage?.model) return { error: 'tokens pricing needs usage.model' };
      // README: an optional `default` model prices models the rule does not list.
      const p = rule.models[usage.model] ?? rule.models['default'];
      if (!p) return { error: `unknown model ${usage.model}` };
      const total = plus(times(whole(usage.input_tokens ?? 0), decimal(p.input_per_1k)), times(whole(usage.output_tokens ?? 0), decimal(p.output_per_1k)));
      return { cost: atLeast(ceil(over(total, whole(1000))), rule.min_points) };
    }
  }
}

/**
 * §4 quotes / holds: the most the work can cost before it starts — duration work by `seconds` when known,
 * else `char_count × seconds_per_char`, else `input_seconds` when the rule says so.
 */
export function quote(rule: PriceRule, usage: Usage | undefined): Priced {
  if (rule.mode !== 'duration') return price(rule, usage);
  if (usage?.seconds !== undefined) return { cost: duration(rule, usage.seconds) };
  const est = rule.estimate;
  if (est?.seconds_per_char !== undefined && usage?.char_count !== undefined) {
    return { cost: duration(rule, times(whole(usage.char_count), decimal(est.seconds_per_char))) };
  }
  if (est?.use_input_seconds && usage?.input_seconds !== undefined) return { cost: duration(rule, usage.input_seconds) };
  return { error: 'a duration quote needs seconds or an estimate input' };
}
