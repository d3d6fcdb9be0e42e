import type { PricingRule } from '../config/document.ts';
import { add, ceil, div, fromBigint, fromNumber, mul, type Rational } from './rational.ts';

/** What a producer reports of the work done (or, for a quote, expects to do). */
export interface Usage {
  seconds?: number;
  input_seconds?: number;
  char_count?: number;
  input_tokens?: number;
  output_tokens?: number;
  model?: string;
}

/** Pricing cannot be done with what was sent: the event is bad input. */
export class PricingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PricingError';
  }
}

const THOUSAND = fromBigint(1000n);

function floorAt(cost: bigint, minPoints: number | undefined): bigint {
  const min = BigInt(minPoints ?? 0);
  return cost < min ? min : cost; // Stryker: `<=` equivalent (tie)
}

function durationCost(rule: Extract<PricingRule, { mode: 'duration' }>, seconds: Rational): bigint {
  const total = rule.divisor !== undefined ? div(seconds, fromNumber(rule.divisor)) : mul(seconds, fromNumber(rule.multiplier!));
  return floorAt(ceil(total), rule.min_points);
}

function tokensCost(rule: Extract<PricingRule, { mode: 'tokens' }>, usage: Usage | undefined): bigint {
  const model = usage?.model;
  if (!model) throw new PricingError('tokens pricing needs usage.model');
  const prices = rule.models[model] ?? rule.models['default'];
  if (!prices) throw new PricingError(`unknown model "${model}" and no default model rule`);
  const input = mul(fromNumber(usage.input_tokens ?? 0), fromNumber(prices.input_per_1k));
  const output = mul(fromNumber(usage.output_tokens ?? 0), fromNumber(prices.output_per_1k));
  return floorAt(ceil(div(add(input, output), THOUSAND)), rule.min_points);
}

/**
 * The cost of work done, from its actual usage. `0n` means nothing to charge (mode `free`, or a cost that
 * rounds to zero with no minimum): the charge is a no-op, not an entry.
 */
export function priceUsage(rule: PricingRule, usage: Usage | undefined): bigint {
  switch (rule.mode) {
    case 'free':
      return 0n;
    case 'fixed':
      return floorAt(BigInt(rule.points), rule.min_points);
    case 'duration': {
      if (usage?.seconds === undefined) throw new PricingError('duration pricing needs usage.seconds');
      return durationCost(rule, fromNumber(usage.seconds));
    }
    case 'tokens':
      return tokensCost(rule, usage);
  }
}

/**
 * The most a piece of work can cost, before it starts: duration work by `usage.seconds` when known, else by
 * its estimate (`char_count × seconds_per_char`, or `input_seconds`); token work by the given token counts.
 */
export function quoteMaxCost(rule: PricingRule, usage: Usage | undefined): bigint {
  if (rule.mode !== 'duration') return priceUsage(rule, usage);
  if (usage?.seconds !== undefined) return durationCost(rule, fromNumber(usage.seconds));
  const est = rule.estimate;
  if (est?.seconds_per_char !== undefined && usage?.char_count !== undefined) {
    return durationCost(rule, mul(fromNumber(usage.char_count), fromNumber(est.seconds_per_char)));
  }
  if (est?.use_input_seconds && usage?.input_seconds !== undefined) {
    return durationCost(rule, fromNumber(usage.input_seconds));
  }
  const needs = [
    'usage.seconds',
    est?.seconds_per_char !== undefined ? 'usage.char_count' : null,
    est?.use_input_seconds ? 'usage.input_seconds' : null,
  ].filter(Boolean);
  throw new PricingError(`a duration quote needs ${needs.join(' or ')}`);
}
