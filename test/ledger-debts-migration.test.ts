import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigCache } from '../src/config/store.ts';
import { MIGRATIONS_DIR } from '../src/db/migrate.ts';
import { runLedger } from '../src/ledger/transaction.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { outcomesOf, refundCmd } from './helpers/ledger-commands.ts';

/**
 * Migration 011 traces debts that were written before debts were traced: it replays every account that was ever in
 * debt. The history below is what the ledger before it wrote (7a3a16c) for: charge 50 on an empty account; grant 80
 * (pays the 50); charge 20; full refund of the first charge (back then: a new never-expiring batch of 50); charge 70
 * (10 into debt); refund 5 of it (back then: paid the debt first).
 */
let world: TestWorld;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
});
afterAll(async () => {
  await world?.drop();
});

async function replayBackfill() {
  const sql = await readFile(join(MIGRATIONS_DIR, '011_debts.sql'), 'utf8');
  await world.sql.unsafe(sql.slice(sql.indexOf('DO $$')));
}

describe('migration 011 on a ledger written before debts were traced', () => {
  it('finds each debt and who paid it, so reconcile is clean and old debt parts are never refunded twice', async () => {
    const s = world.sql;
    const [acct] = await s<{ id: bigint }[]>`
      INSERT INTO accounts (user_id, asset, balance, debt, total_granted, total_consumed) VALUES ('legacy', 'points', -5, 5, 80, 85)
      RETURNING account_id AS id`;
    const a = String(acct!.id);
    const entries: [number, string, number, number, string | null][] = [
      [900001, 'consume', -50, 0, 'old-c1'],
      [900002, 'grant', 80, -50, 'old-g'],
      [900003, 'consume', -20, 30, 'old-c3'],
      [900004, 'refund', 50, 10, 'old-r4'],
      [900005, 'consume', -70, 60, 'old-c5'],
      [900006, 'refund', 5, -10, 'old-r6'],
    ];
    for (const [id, kind, amount, before, eventId] of entries) {
      await s`INSERT INTO ledger_entries (entry_id, account_id, user_id, asset, kind, amount, balance_before, balance_after, event_id, source_type, occurred_at)
              VALUES (${id}, ${a}, 'legacy', 'points', ${kind}, ${amount}, ${before}, ${before + amount}, ${eventId}, 'script', now())`;
      await s`INSERT INTO outbox (user_id, type, data) VALUES ('legacy', 'balance_changed', ${s.json({ asset: 'points', balance: before + amount, transaction_id: String(id) })})`;
    }
    for (const [id, result] of [
      ['old-c1', { outcome: 'applied', transaction_id: '900001' }],
      ['old-c3', { outcome: 'applied', transaction_id: '900003' }],
      ['old-c5', { outcome: 'applied', transaction_id: '900005' }],
    ] as const) {
      await s`INSERT INTO processed_events (queue, event_id, payload_hash, outcome, result) VALUES ('charges', ${id}, 'h', 'applied', ${s.json(result)})`;
    }
    await s`INSERT INTO batches (batch_id, account_id, amount, remaining, source, grant_entry_id) VALUES
      (900101, ${a}, 80, 0, 'recharge', 900002), (900102, ${a}, 50, 0, 'refund', 900004)`;
    await s`INSERT INTO ledger_allocations (entry_id, batch_id, amount) VALUES (900003, 900101, 20), (900005, 900101, 10), (900005, 900102, 50)`;
    await s`INSERT INTO refunds (event_id, charge_entry_id, requested, restored, entry_id, parts) VALUES
      ('old-r4', 900001, 50, 50, 900004, ${s.json([{ batch_id: null, amount: '50', restored: true }])}),
      ('old-r6', 900005, 5, 5, 900006, ${s.json([{ batch_id: null, amount: '5', restored: true }])})`;

    await replayBackfill();
    // Later rows number after these hand-written ones, as they would have.
    await s`SELECT setval('ledger_entries_entry_id_seq', 1000000), setval('batches_batch_id_seq', 1000000)`;

    expect(await s`SELECT charge_entry_id, amount, remaining, refunded FROM debts ORDER BY charge_entry_id`).toEqual([
      { charge_entry_id: 900001n, amount: 50n, remaining: 0n, refunded: 0n },
      { charge_entry_id: 900005n, amount: 10n, remaining: 5n, refunded: 5n },
    ]);
    expect(await s`SELECT charge_entry_id, entry_id, batch_id, amount FROM debt_payments`).toEqual([
      { charge_entry_id: 900001n, entry_id: 900002n, batch_id: 900101n, amount: 50n },
    ]);
    await expectInvariants(s);

    // The first charge's debt part came back long ago (as that never-expiring batch): nothing is left of it.
    const configs = new ConfigCache();
    const again = await runLedger(s, configs, [refundCmd('new-r1', 'old-c1')]);
    expect(outcomesOf(again.outcomes)).toEqual(['refund_exceeds_charge']);
    // The last charge: its unpaid debt, then its batches — 65 of its 70 (5 came back before).
    const last = await runLedger(s, configs, [refundCmd('new-r5', 'old-c5')]);
    expect(last.outcomes[0]).toMatchObject({ ok: true, result: { outcome: 'applied', amount: 65, balance_before: -5, balance_after: 60 } });
    expect(await s`SELECT debt, balance FROM accounts WHERE user_id = 'legacy'`).toEqual([{ debt: 0n, balance: 60n }]);
    await expectInvariants(s);
  });
});
