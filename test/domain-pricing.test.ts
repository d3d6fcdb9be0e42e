import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfigDocument, type PricingRule } from '../src/config/document.ts';
import { PricingError, priceUsage, quoteMaxCost } from '../src/domain/pricing.ts';
import { add, ceil, div, fromBigint, fromNumber, mul, type Rational } from '../src/domain/rational.ts';

const rule = (r: unknown) => r as PricingRule;

describe('pricing', () => {
  it('fixed costs its points, never below min_points', () => {
    expect(priceUsage(rule({ mode: 'fixed', points: 5 }), undefined)).toBe(5n);
    expect(priceUsage(rule({ mode: 'fixed', points: 0, min_points: 2 }), undefined)).toBe(2n);
  });

  it('duration with a divisor rounds up once, on the total', () => {
    const tts = rule({ mode: 'duration', divisor: 10, min_points: 1 });
    expect(priceUsage(tts, { seconds: 31 })).toBe(4n);
    expect(priceUsage(tts, { seconds: 30 })).toBe(3n);
    expect(priceUsage(tts, { seconds: 30.0001 })).toBe(4n);
    expect(priceUsage(tts, { seconds: 0 })).toBe(1n); // min_points
  });

  it('duration with a multiplier multiplies exact decimals (0.1 × 3 is 0.3, not 0.30000000000000004)', () => {
    expect(priceUsage(rule({ mode: 'duration', multiplier: 3 }), { seconds: 0.1 })).toBe(1n);
    expect(priceUsage(rule({ mode: 'duration', multiplier: 10 }), { seconds: 0.3 })).toBe(3n); // float: 3.0000000000000004 → 4
    expect(priceUsage(rule({ mode: 'duration', multiplier: 2, min_points: 1 }), { seconds: 12.5 })).toBe(25n);
  });

  it('duration needs usage.seconds to charge', () => {
    expect(() => priceUsage(rule({ mode: 'duration', divisor: 10 }), {})).toThrow(PricingError);
  });

  it('tokens: ceil((in·input_per_1k + out·output_per_1k) / 1000), min_points, default model', () => {
    const llm = rule({ mode: 'tokens', models: { m: { input_per_1k: 1, output_per_1k: 4 } }, min_points: 1 });
    expect(priceUsage(llm, { model: 'm', input_tokens: 1000, output_tokens: 1000 })).toBe(5n);
    expect(priceUsage(llm, { model: 'm', input_tokens: 1, output_tokens: 0 })).toBe(1n);
    expect(priceUsage(llm, { model: 'm', input_tokens: 1001, output_tokens: 0 })).toBe(2n);
    expect(priceUsage(llm, { model: 'm', input_tokens: 0, output_tokens: 0 })).toBe(1n);
    expect(() => priceUsage(llm, { model: 'other', input_tokens: 5 })).toThrow(/unknown model "other"/);
    const withDefault = rule({ mode: 'tokens', models: { default: { input_per_1k: 0.5, output_per_1k: 0.5 } } });
    expect(priceUsage(withDefault, { model: 'other', input_tokens: 3000, output_tokens: 1000 })).toBe(2n);
  });

  it('free costs nothing', () => {
    expect(priceUsage(rule({ mode: 'free' }), undefined)).toBe(0n);
  });

  it('quotes duration work from its estimate: char_count × seconds_per_char, or input_seconds', () => {
    const tts = rule({ mode: 'duration', divisor: 10, min_points: 1, estimate: { seconds_per_char: 0.25 } });
    expect(quoteMaxCost(tts, { char_count: 1000 })).toBe(25n);
    expect(quoteMaxCost(tts, { char_count: 1001 })).toBe(26n); // 250.25 s / 10 → 25.025 → 26
    const video = rule({ mode: 'duration', multiplier: 2, min_points: 1, estimate: { use_input_seconds: true } });
    expect(quoteMaxCost(video, { input_seconds: 7.2 })).toBe(15n);
    expect(() => quoteMaxCost(video, {})).toThrow(/usage.seconds or usage.input_seconds/);
  });

  it('property: a divisor price is the least integer k ≥ min with k·divisor ≥ seconds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 0, max: 50 }), (centis, divisor, min) => {
        const seconds = centis / 100;
        const k = priceUsage(rule({ mode: 'duration', divisor, min_points: min }), { seconds });
        // exact check in integers: k·divisor·100 ≥ centis and (k−1)·divisor·100 < centis unless k = min
        expect(k * BigInt(divisor) * 100n >= BigInt(centis)).toBe(true);
        if (k > BigInt(min)) expect((k - 1n) * BigInt(divisor) * 100n < BigInt(centis)).toBe(true);
      }),
    );
  });

  it('property: token prices are monotone in usage and never below min_points', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e7 }), fc.integer({ min: 0, max: 1e7 }), fc.integer({ min: 0, max: 1e4 }), fc.integer({ min: 0, max: 5 }),
        (input, output, extra, min) => {
          const llm = rule({ mode: 'tokens', models: { m: { input_per_1k: 0.15, output_per_1k: 0.6 } }, min_points: min });
          const a = priceUsage(llm, { model: 'm', input_tokens: input, output_tokens: output });
          const b = priceUsage(llm, { model: 'm', input_tokens: input + extra, output_tokens: output });
          expect(b >= a).toBe(true);
          expect(a >= BigInt(min)).toBe(true);
        },
      ),
    );
  });

  it('a PricingError is named and says what the usage lacks', () => {
    const llm = rule({ mode: 'tokens', models: { default: { input_per_1k: 1, output_per_1k: 1 } } });
    const tts = rule({ mode: 'duration', divisor: 10 });
    const failure = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return [(e as Error).name, (e as Error).message];
      }
      return null;
    };
    // A default model prices unknown models, not a missing one.
    expect(failure(() => priceUsage(llm, { input_tokens: 5 }))).toEqual(['PricingError', 'tokens pricing needs usage.model']);
    expect(failure(() => priceUsage(llm, undefined))).toEqual(['PricingError', 'tokens pricing needs usage.model']);
    expect(failure(() => priceUsage(tts, undefined))).toEqual(['PricingError', 'duration pricing needs usage.seconds']);
  });

  it('quotes fixed, free and token work at their price', () => {
    expect(quoteMaxCost(rule({ mode: 'fixed', points: 7 }), undefined)).toBe(7n);
    expect(quoteMaxCost(rule({ mode: 'free' }), undefined)).toBe(0n);
    expect(quoteMaxCost(rule({ mode: 'tokens', models: { m: { input_per_1k: 2, output_per_1k: 0 } } }), { model: 'm', input_tokens: 1500 })).toBe(3n);
  });

  it('quotes duration work by its actual seconds when they are known, whatever the estimate', () => {
    const tts = rule({ mode: 'duration', divisor: 10, estimate: { seconds_per_char: 0.25, use_input_seconds: true } });
    expect(quoteMaxCost(tts, { seconds: 31, char_count: 1000, input_seconds: 500 })).toBe(4n);
    expect(quoteMaxCost(rule({ mode: 'duration', divisor: 10 }), { seconds: 31 })).toBe(4n);
  });

  it('an estimate uses only the input it names; without one, the quote says what it needs', () => {
    const both = rule({ mode: 'duration', divisor: 10, estimate: { seconds_per_char: 0.25, use_input_seconds: true } });
    expect(quoteMaxCost(both, { input_seconds: 70 })).toBe(7n);
    expect(quoteMaxCost(both, { char_count: 40, input_seconds: 70 })).toBe(1n);
    expect(() => quoteMaxCost(both, {})).toThrow(new PricingError('a duration quote needs usage.seconds or usage.char_count or usage.input_seconds'));
    const byInput = rule({ mode: 'duration', divisor: 10, estimate: { use_input_seconds: true } });
    expect(() => quoteMaxCost(byInput, { char_count: 1000 })).toThrow(new PricingError('a duration quote needs usage.seconds or usage.input_seconds'));
    expect(() => quoteMaxCost(byInput, undefined)).toThrow(PricingError);
    const byChars = rule({ mode: 'duration', divisor: 10, estimate: { seconds_per_char: 0.25 } });
    expect(() => quoteMaxCost(byChars, { input_seconds: 70 })).toThrow(new PricingError('a duration quote needs usage.seconds or usage.char_count'));
    expect(() => quoteMaxCost(byChars, undefined)).toThrow(new PricingError('a duration quote needs usage.seconds or usage.char_count'));
    const none = rule({ mode: 'duration', divisor: 10 });
    expect(() => quoteMaxCost(none, { char_count: 100, input_seconds: 70 })).toThrow(new PricingError('a duration quote needs usage.seconds'));
    expect(() => quoteMaxCost(none, undefined)).toThrow(new PricingError('a duration quote needs usage.seconds'));
  });

  it('refuses a config document that does not validate, as a whole', () => {
    expect(() => parseConfigDocument({ assets: { points: {} }, pricing: { points: { tts: { mode: 'duration' } } } })).toThrow(/exactly one of divisor or multiplier/);
    expect(() => parseConfigDocument({ pricing: { gold: { x: { mode: 'free' } } } })).toThrow(/asset gold is not declared/);
    expect(() => parseConfigDocument({ timezone: 'Mars/Olympus' })).toThrow(/IANA/);
  });
});

describe('rationals', () => {
  /** x as an exact fraction of integers, the schoolbook way: a decimal with `places` digits after the point. */
  const decimal = fc.tuple(fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.integer({ min: 0, max: 6 }));
  const exact = ([digits, places]: [number, number]) => ({ n: BigInt(digits), d: 10n ** BigInt(places) });
  const number = ([digits, places]: [number, number]) => Number(`${digits}e-${places}`);
  const same = (r: Rational, n: bigint, d: bigint) => expect(r.num * d).toBe(n * r.den);

  it('read every double at its shortest decimal', () => {
    expect(fromNumber(1e-7)).toEqual({ num: 1n, den: 10_000_000n });
    expect(fromNumber(1.5e21)).toEqual({ num: 1_500_000_000_000_000_000_000n, den: 1n });
    expect(ceil(fromNumber(2.000001))).toBe(3n);
  });
  it('keep the sign, and refuse what is not a finite number', () => {
    expect(fromNumber(-2.5)).toEqual({ num: -25n, den: 10n });
    expect(fromNumber(0)).toEqual({ num: 0n, den: 1n });
    for (const bad of [NaN, Infinity, -Infinity]) expect(() => fromNumber(bad)).toThrow(new RangeError(`not a finite number: ${bad}`));
    expect(() => div(fromBigint(1n), fromNumber(0))).toThrow(new RangeError('division by zero'));
  });

  it('property: add, mul and div are exact, and a quotient keeps a positive denominator', () => {
    fc.assert(
      fc.property(decimal, decimal, (a, b) => {
        const [x, y] = [exact(a), exact(b)];
        const [ra, rb] = [fromNumber(number(a)), fromNumber(number(b))];
        same(ra, x.n, x.d);
        same(add(ra, rb), x.n * y.d + y.n * x.d, x.d * y.d);
        same(mul(ra, rb), x.n * y.n, x.d * y.d);
        if (y.n !== 0n) {
          const q = div(ra, rb);
          same(q, x.n * y.d, x.d * y.n);
          expect(q.den > 0n).toBe(true);
        }
      }),
    );
  });

  it('property: ceil is the least integer not below the value, negative values included', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -10_000n, max: 10_000n }), fc.bigInt({ min: 1n, max: 1_000n }), (num, den) => {
        const k = ceil({ num, den });
        expect(k * den >= num).toBe(true);
        expect((k - 1n) * den < num).toBe(true);
      }),
    );
  });

});
