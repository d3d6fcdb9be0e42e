import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfigDocument, type PricingRule } from '../src/config/document.ts';
import { PricingError, priceUsage, quoteMaxCost } from '../src/domain/pricing.ts';
import { ceil, fromNumber } from '../src/domain/rational.ts';

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

  it('rationals read every double at its shortest decimal', () => {
    expect(fromNumber(1e-7)).toEqual({ num: 1n, den: 10_000_000n });
    expect(fromNumber(1.5e21)).toEqual({ num: 1_500_000_000_000_000_000_000n, den: 1n });
    expect(ceil(fromNumber(2.000001))).toBe(3n);
  });

  it('refuses a config document that does not validate, as a whole', () => {
    expect(() => parseConfigDocument({ assets: { points: {} }, pricing: { points: { tts: { mode: 'duration' } } } })).toThrow(/exactly one of divisor or multiplier/);
    expect(() => parseConfigDocument({ pricing: { gold: { x: { mode: 'free' } } } })).toThrow(/asset gold is not declared/);
    expect(() => parseConfigDocument({ timezone: 'Mars/Olympus' })).toThrow(/IANA/);
  });
});
