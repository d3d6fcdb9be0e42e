import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { balanceRulesFor, watchBalance, type BalanceRule } from '../src/alerts/balance-rules.ts';
import { alertsSchema } from '../src/config/alerts-webhooks.ts';
import { flowDeltas, type FlowEntry } from '../src/money-flow/deltas.ts';

const low = (below: number): BalanceRule => ({ key: `low_balance:${below}`, kind: 'low_balance', threshold: BigInt(below) });
const overdrawn: BalanceRule = { key: 'overdrawn', kind: 'overdrawn', threshold: 0n };
/** Entries that take the balance from `start` through `balances`. */
const steps = (start: bigint, balances: bigint[]) => balances.map((b, i) => ({ amount: b - (i === 0 ? start : balances[i - 1]!), balanceAfter: b }));

describe('balance alerts: edge-triggered per rule', () => {
  it('fires once when the balance goes below, not again while it stays below, and again after it cleared', () => {
    const r = watchBalance([low(100)], [], steps(200n, [150n, 99n, 50n, 0n, 100n, 120n, 80n]));
    expect(r.crossings.map((c) => [c.at, c.balance])).toEqual([
      [1, 99n],
      [6, 80n],
    ]);
    expect(r.fired).toEqual(['low_balance:100']);
  });

  it('clears at the threshold itself: "below 100" is not true at 100', () => {
    const r = watchBalance([low(100)], ['low_balance:100'], steps(90n, [100n, 99n]));
    expect(r.crossings.map((c) => c.at)).toEqual([1]);
  });

  it('does not fire for a balance already below when the rule has fired (persisted state)', () => {
    expect(watchBalance([low(100)], ['low_balance:100'], steps(20n, [10n, 5n, -3n])).crossings).toEqual([]);
  });

  it('treats a rule the account has never seen as armed: one alert at its first debit below it', () => {
    const r = watchBalance([low(100)], [], steps(0n, [60n, 40n, 30n])); // the grant leaving 60 does not alert
    expect(r.crossings.map((c) => c.at)).toEqual([1]);
  });

  it('never alerts on money coming in, even below the threshold', () => {
    expect(watchBalance([low(100), overdrawn], [], steps(-50n, [-20n, 10n, 60n])).crossings).toEqual([]);
  });

  it('forgets the state of rules no longer configured, so a threshold change alerts anew', () => {
    const r = watchBalance([low(200)], ['low_balance:100', 'overdrawn'], steps(160n, [150n]));
    expect(r.crossings.map((c) => c.rule.key)).toEqual(['low_balance:200']);
    expect(r.fired).toEqual(['low_balance:200']);
  });

  it('crosses several rules at one entry, the higher threshold first', () => {
    const rules = balanceRulesFor(alertsSchema.parse({ low_balance: [{ asset: 'p', below: 10 }, { asset: 'p', below: 100 }], overdrawn: [{ asset: 'p' }] }), 'p');
    expect(rules.map((x) => x.key)).toEqual(['low_balance:100', 'low_balance:10', 'overdrawn']);
    expect(watchBalance(rules, [], steps(0n, [500n, -5n])).crossings.map((c) => c.rule.key)).toEqual(['low_balance:100', 'low_balance:10', 'overdrawn']);
    expect(balanceRulesFor(alertsSchema.parse({}), 'p')).toEqual([]);
  });

  it('property: from a consistent state, one alert per downward crossing per rule; the state ends as "last balance below"', () => {
    const balance = fc.bigInt({ min: -1000n, max: 1000n });
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 900 }), { maxLength: 4 }), fc.boolean(), balance, fc.array(balance, { maxLength: 40 }), (belows, withOverdrawn, start, balances) => {
        const rules = [...belows.map(low), ...(withOverdrawn ? [overdrawn] : [])];
        const fired = rules.filter((r) => start < r.threshold).map((r) => r.key);
        const got = watchBalance(rules, fired, steps(start, balances));
        for (const rule of rules) {
          let expected = 0;
          let prev = start;
          for (const b of balances) {
            if (prev >= rule.threshold && b < rule.threshold) expected++;
            prev = b;
          }
          expect(got.crossings.filter((c) => c.rule === rule).length).toBe(expected);
          expect(got.fired.includes(rule.key)).toBe(prev < rule.threshold);
        }
      }),
    );
  });
});

describe('money-flow deltas', () => {
  it('sums entries per asset, consumed and expired as positive amounts, debt from the first and last balance per account', () => {
    const a = {};
    const b = {};
    const entries: FlowEntry[] = [
      { account: a, asset: 'p', kind: 'grant', amount: 50n, balanceBefore: -20n, balanceAfter: 30n }, // pays a debt of 20
      { account: a, asset: 'p', kind: 'consume', amount: -40n, balanceBefore: 30n, balanceAfter: -10n }, // into debt 10
      { account: b, asset: 'p', kind: 'expire', amount: -5n, balanceBefore: 5n, balanceAfter: 0n },
      { account: b, asset: 'p', kind: 'refund', amount: 7n, balanceBefore: 0n, balanceAfter: 7n },
      { account: {}, asset: 'c', kind: 'consume', amount: -3n, balanceBefore: 0n, balanceAfter: -3n },
    ];
    expect(flowDeltas(entries)).toEqual([
      { asset: 'p', granted: '50', consumed: '40', refunded: '7', expired: '5', balance: '12', debt: '-10' },
      { asset: 'c', granted: '0', consumed: '3', refunded: '0', expired: '0', balance: '-3', debt: '3' },
    ]);
    expect(flowDeltas([])).toEqual([]);
  });
});
