/**
 * Exact fractions for prices (CONTRACT §6: costs round up once, on the total). A JSON number is taken at its
 * decimal value — 0.1 is 1/10, not the nearest double — which is what "round up once" needs to be exact.
 * Written for the model only; it shares nothing with src/domain/rational.ts on purpose.
 */
export interface Frac {
  n: bigint;
  d: bigint;
}

/** The decimal a JS number prints as ("0.25", "1e-7", "12.5"), as a fraction. */
export function decimal(x: number): Frac {
  if (!Number.isFinite(x)) throw new Error(`not a finite number: ${x}`);
  const [mantissa, exponent] = String(Math.abs(x)).split('e') as [string, string | undefined];
  const [whole, fraction = ''] = mantissa.split('.') as [string, string | undefined];
  const scale = Number(exponent ?? 0) - fraction.length;
  const digits = BigInt(whole + fraction) * (x < 0 ? -1n : 1n);
  return scale >= 0 ? { n: digits * 10n ** BigInt(scale), d: 1n } : { n: digits, d: 10n ** BigInt(-scale) };
}

export const whole = (n: bigint | number): Frac => ({ n: BigInt(n), d: 1n });
export const times = (a: Frac, b: Frac): Frac => ({ n: a.n * b.n, d: a.d * b.d });
export const over = (a: Frac, b: Frac): Frac => ({ n: a.n * b.d, d: a.d * b.n });
export const plus = (a: Frac, b: Frac): Frac => ({ n: a.n * b.d + b.n * a.d, d: a.d * b.d });

/** The smallest integer ≥ f (f ≥ 0 here: usage and prices are never negative). */
export function ceil(f: Frac): bigint {
  const q = f.n / f.d;
  return q * f.d === f.n ? q : q + 1n;
}
