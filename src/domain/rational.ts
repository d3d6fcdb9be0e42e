/**
 * Exact non-negative rationals over bigint, for pricing: every JSON number is taken at its decimal value
 * (0.1 is 1/10, not the nearest double), so `ceil` rounds the true product, once, on the total.
 */
export interface Rational {
  readonly num: bigint;
  readonly den: bigint;
}

export function fromNumber(x: number): Rational {
  if (!Number.isFinite(x)) throw new RangeError(`not a finite number: ${x}`);
  const text = String(Math.abs(x)); // shortest round-trip decimal, e.g. "0.25", "1e-7", "1.5e+21"
  // Stryker: equivalent — split always yields a first element, so the '0' defaults (here and below) never apply.
  const [mantissa = '0', expPart] = text.split('e');
  const exp = expPart === undefined ? 0 : Number(expPart);
  const [int = '0', frac = ''] = mantissa.split('.');
  let num = BigInt(int + frac);
  let den = 1n;
  const scale = exp - frac.length;
  if (scale >= 0) num *= 10n ** BigInt(scale); // Stryker: `> 0` equivalent (10^0 = 1 either way)
  else den = 10n ** BigInt(-scale);
  return { num: x < 0 ? -num : num, den }; // Stryker: `<= 0` equivalent (−0n is 0n)
}

export function fromBigint(n: bigint): Rational {
  return { num: n, den: 1n };
}

export function mul(a: Rational, b: Rational): Rational {
  return { num: a.num * b.num, den: a.den * b.den };
}

export function div(a: Rational, b: Rational): Rational {
  if (b.num === 0n) throw new RangeError('division by zero');
  // Stryker: equivalent — `<= 0n` (zero threw above), and `/ sign` for `* sign` (sign is ±1).
  const sign = b.num < 0n ? -1n : 1n;
  return { num: a.num * b.den * sign, den: a.den * b.num * sign };
}

export function add(a: Rational, b: Rational): Rational {
  return { num: a.num * b.den + b.num * a.den, den: a.den * b.den };
}

/** Smallest integer ≥ r. */
export function ceil(r: Rational): bigint {
  const q = r.num / r.den; // truncates toward zero
  return r.num > 0n && q * r.den !== r.num ? q + 1n : q; // Stryker: `>= 0n` equivalent (0 divides exactly)
}
