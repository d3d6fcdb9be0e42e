import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { EXAMPLE_CONFIG } from '../src/cli/dev.ts';
import { ConfigCache } from '../src/config/store.ts';
import { runLedger } from '../src/ledger/transaction.ts';
import { placeHold } from '../src/money/holds.ts';
import { createWorld, PG_BASE, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { chargeCmd, grantCmd, outcomesOf, refundCmd, rewardCmd } from './helpers/ledger-commands.ts';
import { countingDb, type Counter } from './helpers/round-trips.ts';

/**
 * What one representative ledger transaction costs the database, pinned: a later change cannot add a round trip
 * or a statement to the hot path without this test saying so. Counted on a warm connection (statements already
 * prepared), inside the transaction (BEGIN and COMMIT are two more statements, sent with the first and last).
 */
let world: TestWorld;
let db: Counter;
const configs = new ConfigCache();

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  db = countingDb(`${PG_BASE}/${world.dbName}`);
});
afterAll(async () => {
  await db?.end();
  await world?.drop();
});

/** grant, priced charge, guarded charge, reward, refund of an earlier charge, hold settle — six accounts' worth. */
async function mixed(round: string) {
  const u = (name: string) => `${name}-${round}`;
  await runLedger(db.sql, configs, [
    grantCmd(`seed-a-${round}`, u('a'), 100),
    grantCmd(`seed-b-${round}`, u('b'), 100, { asset: 'credits' }),
    grantCmd(`seed-c-${round}`, u('c'), 1, { asset: 'credits' }),
    grantCmd(`seed-d-${round}`, u('d'), 100, { asset: 'credits' }),
    chargeCmd(`first-${round}`, u('b'), 30, { asset: 'credits', sourceType: 'llm' }),
  ]);
  const hold = await placeHold(db.sql, configs, { event_id: `hold-${round}`, user_id: u('d'), asset: 'credits', source_type: 'llm', amount: 20, ttl_seconds: 600 });
  if (hold.kind !== 'created') throw new Error('hold not placed');
  const cmds = [
    grantCmd(`g-${round}`, u('a'), 50),
    chargeCmd(`c-${round}`, u('b'), null, { asset: 'credits', sourceType: 'llm', usage: { model: 'gpt-4o-mini', input_tokens: 1000, output_tokens: 1000 } }),
    chargeCmd(`gc-${round}`, u('a'), 10, { policy: 'guarded' }),
    rewardCmd(`rw-${round}`, u('c')),
    refundCmd(`rf-${round}`, `first-${round}`, 10),
    chargeCmd(`s-${round}`, u('d'), 15, { asset: 'credits', sourceType: 'llm', holdId: hold.hold.hold_id }),
  ];
  db.start();
  const report = await runLedger(db.sql, configs, cmds);
  const cost = db.stop();
  expect(outcomesOf(report.outcomes)).toEqual(['applied', 'applied', 'applied', 'applied', 'applied', 'applied']);
  return Object.assign(cost, { alerts: report.alerts });
}

/** The same with debt in play: a charge into debt, a grant paying an older debt, a refund of a debt-paid charge. */
async function indebted(round: string) {
  const u = (name: string) => `${name}-${round}`;
  await runLedger(db.sql, configs, [chargeCmd(`old-${round}`, u('e'), 30), grantCmd(`pay-${round}`, u('e'), 40), chargeCmd(`owe-${round}`, u('f'), 5)]);
  const cmds = [chargeCmd(`c2-${round}`, u('e'), 50), grantCmd(`g2-${round}`, u('f'), 20), refundCmd(`rf2-${round}`, `old-${round}`)];
  db.start();
  const report = await runLedger(db.sql, configs, cmds);
  const cost = db.stop();
  expect(outcomesOf(report.outcomes)).toEqual(['applied', 'applied', 'applied']);
  return Object.assign(cost, { alerts: report.alerts });
}

const summary = (c: { roundTrips: number; statements: string[] }) => ({ roundTrips: c.roundTrips, statements: c.statements.length });

describe('the ledger transaction', () => {
  it('costs a fixed number of round trips and statements', async () => {
    await mixed('warm'); // prepares every statement on the one connection
    const cost = await mixed('measured');
    // Before the phases were named (7a3a16c): 5 round trips, 24 statements (BEGIN and COMMIT included). The
    // refunded charge is now looked up with the clock, in the first round trip. The money-flow deltas (issue 12)
    // are one more statement in the write phase's pipeline: 24 → 25, no round trip.
    expect(summary(cost), cost.statements.join('\n')).toEqual({ roundTrips: 4, statements: 25 });
    await expectInvariants(world.sql);
  });

  it('with debt in play: open debts load with the batches, debts and payments write with the entries', async () => {
    await indebted('warm');
    const cost = await indebted('measured');
    // Debts cost statements only where there is debt — load open debts, write debts, write payments: 19 before
    // (7a3a16c) → 22 — and never a round trip (5 before → 4, as above). Money-flow deltas: 22 → 23.
    expect(summary(cost), cost.statements.join('\n')).toEqual({ roundTrips: 4, statements: 23 });
    await expectInvariants(world.sql);
  });

  it('with alert rules crossed: alerts cost no statement and no round trip (outbox rows and the account UPDATE)', async () => {
    await world.applyConfig({
      ...(parseYaml(readFileSync(EXAMPLE_CONFIG, 'utf8')) as object),
      // Thresholds the measured transactions cross: a 150 → 140 (points), b 70 → 65 (credits), e 10 → −40
      // (points, overdrawn).
      alerts: { low_balance: [{ asset: 'points', below: 145 }, { asset: 'credits', below: 70 }], overdrawn: [{ asset: 'points' }, { asset: 'credits' }] },
    });
    await mixed('alerts-warm');
    await indebted('alerts-warm');
    const mixedCost = await mixed('alerts');
    const debtCost = await indebted('alerts');
    expect(summary(mixedCost), mixedCost.statements.join('\n')).toEqual({ roundTrips: 4, statements: 25 });
    expect(summary(debtCost), debtCost.statements.join('\n')).toEqual({ roundTrips: 4, statements: 23 });
    expect(mixedCost.alerts).toEqual([
      { kind: 'low_balance', asset: 'points' },
      { kind: 'low_balance', asset: 'credits' },
    ]);
    expect(debtCost.alerts).toEqual([{ kind: 'overdrawn', asset: 'points' }]); // e was below 145 already
    await expectInvariants(world.sql);
  });
});
