import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/ops/register.ts';
import { ADMIN_TOKEN, createWorld, type TestWorld } from './helpers/env.ts';
import { spawnTally, startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

async function runReconcileJob(): Promise<any> {
  const q = tally.producer.queue('maintenance');
  const job = await q.add('reconcile', {}, { jobId: `rc-${Date.now()}` });
  return tally.producer.result('maintenance', job);
}
async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${tally.base}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}
async function cliReconcile(): Promise<{ code: number; summary: any }> {
  const child = spawnTally(world, ['maintenance', 'reconcile']);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const [code] = (await once(child, 'exit')) as [number];
  return { code, summary: JSON.parse(out) };
}

describe('reconcile', () => {
  it('is scheduled hourly', async () => {
    const schedulers = await tally.producer.queue('maintenance').getJobSchedulers();
    expect(schedulers).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'reconcile', every: 3_600_000 })]));
  });

  it('finds nothing on a healthy ledger, and says so in /metrics and from the CLI (exit 0)', async () => {
    for (const [i, user] of ['ann', 'ben', 'cat'].entries()) {
      await tally.producer.grant({ event_id: `g-${user}`, user_id: user, asset: 'points', amount: 100, source: 'gift' }, { wait: true });
      await tally.producer.charge({ event_id: `c-${user}`, user_id: user, asset: 'points', source_type: 'script', source_id: `s${i}`, policy: 'postpaid' }, { wait: true });
    }
    const summary = await runReconcileJob();
    expect(summary).toMatchObject({ task: 'reconcile', ok: true, violations: [] });
    expect(await metric('tally_reconcile_ok')).toBe(1);
    const { code, summary: cli } = await cliReconcile();
    expect(code).toBe(0);
    expect(cli).toMatchObject({ ok: true, accounts_checked: 3, violations: [] });
  });

  it('catches deliberately corrupted rows, naming each by id, with exit code 3, a metric and the dashboard badge', async () => {
    await tally.producer.grant({ event_id: 'g-dan', user_id: 'dan', asset: 'points', amount: 10, source: 'gift' }, { wait: true });
    const [dan] = await world.sql`SELECT account_id FROM accounts WHERE user_id = 'dan'`;
    const [ann] = await world.sql`SELECT account_id FROM accounts WHERE user_id = 'ann'`;
    const [benBatch] = await world.sql`SELECT b.batch_id FROM batches b JOIN accounts a USING (account_id) WHERE a.user_id = 'ben'`;
    const [catEntry] = await world.sql`SELECT entry_id FROM ledger_entries WHERE user_id = 'cat' AND kind = 'consume'`;
    const [annGrant] = await world.sql`SELECT entry_id FROM ledger_entries WHERE user_id = 'ann' AND kind = 'grant'`;
    // 1. An account whose counters drifted from its entries (its own CHECKs still hold).
    await world.sql`UPDATE accounts SET balance = balance + 5, total_granted = total_granted + 5 WHERE user_id = 'ann'`;
    // 2. A batch with a negative remainder: only possible with its CHECK dropped, in this test database.
    await world.sql`ALTER TABLE batches DROP CONSTRAINT batches_check`.catch(async () => {
      const [c] = await world.sql`SELECT conname FROM pg_constraint WHERE conrelid = 'batches'::regclass AND pg_get_constraintdef(oid) LIKE '%remaining >= 0%'`;
      await world.sql`ALTER TABLE batches DROP CONSTRAINT ${world.sql(c!.conname)}`;
    });
    await world.sql`UPDATE batches SET remaining = -1 WHERE batch_id = ${benBatch!.batch_id}`;
    // 3. A rewritten history entry: the append-only trigger disabled first.
    await world.sql`ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only`;
    await world.sql`UPDATE ledger_entries SET balance_before = balance_before + 1, balance_after = balance_after + 1 WHERE entry_id = ${catEntry!.entry_id}`;
    await world.sql`ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only`;
    // 4. An entry whose balance_changed was never written (no push, no webhook would ever tell of it).
    await world.sql`DELETE FROM outbox WHERE type = 'balance_changed' AND data->>'transaction_id' = ${String(annGrant!.entry_id)}`;
    // 5. A debt nobody owes: the account's debt no longer matches its open debts (and its batch gave it nothing).
    await world.sql`UPDATE accounts SET debt = 7, balance = -7, total_consumed = total_consumed + 7 + balance WHERE user_id = 'dan'`;

    const { code, summary } = await cliReconcile();
    expect(code).toBe(3);
    expect(summary.ok).toBe(false);
    const checks = summary.violations.map((v: any) => [v.check, v.entry_id ?? v.batch_id ?? v.account_id]);
    expect(checks).toEqual(
      expect.arrayContaining([
        ['balance_equals_entries', String(ann!.account_id)],
        ['total_granted_equals_entries', String(ann!.account_id)],
        ['remaining_within_amount', String(benBatch!.batch_id)],
        ['entry_chain', String(catEntry!.entry_id)],
        ['one_outbox_row_per_entry', String(annGrant!.entry_id)],
        ['debt_equals_open_debts', String(dan!.account_id)],
        ['batch_amount_accounted', String(benBatch!.batch_id)],
      ]),
    );

    const scheduled = await runReconcileJob();
    expect(scheduled.ok).toBe(false);
    expect(await metric('tally_reconcile_ok')).toBe(0);
    expect(await metric('tally_reconcile_violations')).toBe(summary.violations.length);
    const dash = await waitFor('the dashboard cache to turn over', async () => {
      const r = await tally.http('GET', '/admin/dashboard/data', undefined, ADMIN_TOKEN);
      return r.body.invariants?.ok === false ? r.body : undefined;
    }, 10_000, 500);
    expect(dash.invariants.violations.length).toBe(summary.violations.length);
  });
});
