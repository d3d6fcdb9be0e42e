import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigCache } from '../src/config/store.ts';
import { runLedger } from '../src/ledger/transaction.ts';
import { runExpire } from '../src/maintenance/expire.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { chargeCmd, grantCmd, outcomesOf, refundCmd, type LedgerCommand } from './helpers/ledger-commands.ts';

/**
 * Balance alerts decided inside the ledger transaction (CONTRACT §6): low_balance and overdrawn, edge-triggered —
 * one alert per crossing, re-armed when the balance is back at or above the threshold.
 */
let world: TestWorld;
const configs = new ConfigCache();

const BASE = {
  assets: { points: { default_expiry_days: 180 }, credits: { default_expiry_days: null } },
  pricing: { points: { script: { mode: 'fixed', points: 5 } } },
};
const RULES = { low_balance: [{ asset: 'points', below: 100 }], overdrawn: [{ asset: 'points' }] };

beforeAll(async () => {
  world = await createWorld();
});
afterAll(async () => {
  await world?.drop();
});
beforeEach(async () => {
  await world.applyConfig({ ...BASE, alerts: RULES });
});

let n = 0;
const id = (p: string) => `${p}-${++n}`;
const run = async (cmds: LedgerCommand[]) => runLedger(world.sql, configs, cmds);

interface AlertRow {
  seq: string;
  user_id: string;
  data: { kind: string; asset: string; balance?: number; threshold?: number; debt?: number; transaction_id?: string };
}
async function alertsOf(user: string): Promise<AlertRow['data'][]> {
  const rows = await world.sql<AlertRow[]>`SELECT outbox_id::text AS seq, user_id, data FROM outbox WHERE type = 'alert' AND user_id = ${user} ORDER BY outbox_id`;
  return rows.map((r) => r.data);
}
const kinds = async (user: string) => (await alertsOf(user)).map((a) => `${a.kind}@${a.balance}`);

describe('low_balance', () => {
  it('alerts once when a charge crosses below, stays quiet below, and re-arms after a top-up', async () => {
    const u = id('lb');
    await run([grantCmd(id('g'), u, 150)]);
    expect(await kinds(u)).toEqual([]);
    await run([chargeCmd(id('c'), u, 60)]); // 150 → 90: crossed
    await run([chargeCmd(id('c'), u, 10)]); // 80: still below, no alert
    await run([chargeCmd(id('c'), u, 10)]); // 70
    expect(await kinds(u)).toEqual(['low_balance@90']);
    await run([grantCmd(id('g'), u, 30)]); // 100: at the threshold — cleared
    await run([chargeCmd(id('c'), u, 1)]); // 99: crossed again
    expect(await kinds(u)).toEqual(['low_balance@90', 'low_balance@99']);
    await expectInvariants(world.sql);
  });

  it('says which entry crossed: the alert follows that entry’s balance_changed, with its transaction_id', async () => {
    const u = id('shape');
    await run([grantCmd(id('g'), u, 120)]);
    const report = await run([chargeCmd(id('c'), u, 30)]);
    const txId = (report.outcomes[0] as unknown as { result: { transaction_id: string } }).result.transaction_id;
    const rows = await world.sql<{ type: string; data: Record<string, unknown> }[]>`
      SELECT type, data FROM outbox WHERE user_id = ${u} ORDER BY outbox_id`;
    expect(rows.map((r) => r.type)).toEqual(['balance_changed', 'balance_changed', 'alert']);
    expect(rows[2]!.data).toEqual({ kind: 'low_balance', asset: 'points', balance: 90, threshold: 100, transaction_id: txId });
    expect(rows[1]!.data).toMatchObject({ transaction_id: txId, balance: 90 });
  });

  it('down, up, down within one transaction: two alerts', async () => {
    const u = id('dud');
    await run([grantCmd(id('g'), u, 150)]);
    await run([chargeCmd(id('c'), u, 100), grantCmd(id('g'), u, 100), chargeCmd(id('c'), u, 120), chargeCmd(id('c'), u, 5)]);
    expect(await kinds(u)).toEqual(['low_balance@50', 'low_balance@30']);
  });

  it('a refund that lifts the balance back re-arms it', async () => {
    const u = id('rf');
    await run([grantCmd(id('g'), u, 150)]);
    const charge = id('c');
    await run([chargeCmd(charge, u, 100)]); // 50
    await run([refundCmd(id('r'), charge, 60)]); // 110: cleared
    await run([chargeCmd(id('c'), u, 20)]); // 90: crossed again
    expect(await kinds(u)).toEqual(['low_balance@50', 'low_balance@90']);
  });

  it('a replay, a refused guarded charge and a free charge write no entry and so no alert', async () => {
    const u = id('quiet');
    await run([grantCmd(id('g'), u, 150)]);
    const c = chargeCmd(id('c'), u, 60);
    await run([c]);
    await run([grantCmd(id('g'), u, 100)]); // 190: cleared
    const again = await run([c, chargeCmd(id('c'), u, 500, { policy: 'guarded' }), chargeCmd(id('c'), u, 0)]);
    expect(outcomesOf(again.outcomes)).toEqual(['noop_duplicate', 'rejected_insufficient', 'noop_free']);
    expect(await kinds(u)).toEqual(['low_balance@90']);
  });

  it('only watches the asset the rule names', async () => {
    const u = id('asset');
    await run([grantCmd(id('g'), u, 10, { asset: 'credits' }), chargeCmd(id('c'), u, 50, { asset: 'credits' })]);
    expect(await kinds(u)).toEqual([]);
  });
});

describe('overdrawn', () => {
  it('alerts when a post-paid charge goes into debt, with the debt, and again only after the debt was paid off', async () => {
    const u = id('od');
    await run([grantCmd(id('g'), u, 200)]);
    await run([chargeCmd(id('c'), u, 230)]); // −30: low_balance and overdrawn at the same entry
    expect(await alertsOf(u)).toMatchObject([
      { kind: 'low_balance', balance: -30, threshold: 100 },
      { kind: 'overdrawn', balance: -30, debt: 30, threshold: 0 },
    ]);
    await run([grantCmd(id('g'), u, 20)]); // −10: still in debt
    await run([chargeCmd(id('c'), u, 5)]); // −15
    await run([grantCmd(id('g'), u, 15)]); // 0: debt paid, overdrawn cleared (low_balance not)
    await run([chargeCmd(id('c'), u, 1)]); // −1
    expect(await kinds(u)).toEqual(['low_balance@-30', 'overdrawn@-30', 'overdrawn@-1']);
    await expectInvariants(world.sql);
  });
});

describe('expiry lowers a balance too', () => {
  it('the expire sweep is a ledger transaction: the expiry that crosses alerts, naming the expire entry', async () => {
    const u = id('exp');
    const now = await world.clock.now();
    await run([grantCmd(id('g'), u, 60, { expiresAt: new Date(now.getTime() + 3_600_000).toISOString() }), grantCmd(id('g'), u, 80, { expiresAt: null })]);
    expect(await kinds(u)).toEqual([]); // 140
    await world.clock.advance(3_600_000 + 1000);
    const swept = await runExpire(world.sql, configs);
    expect(swept.batches_expired).toBeGreaterThanOrEqual(1);
    const alerts = await alertsOf(u);
    expect(alerts).toMatchObject([{ kind: 'low_balance', balance: 80 }]);
    const [entry] = await world.sql<{ kind: string }[]>`SELECT kind FROM ledger_entries WHERE entry_id = ${alerts[0]!.transaction_id!}`;
    expect(entry!.kind).toBe('expire');
    await runExpire(world.sql, configs);
    expect(await alertsOf(u)).toHaveLength(1);
    await world.clock.set(new Date());
  });

  it('an expiry the sweep has not reached is closed — and alerted — by the account’s next transaction', async () => {
    const u = id('lazy');
    const now = await world.clock.now();
    await run([grantCmd(id('g'), u, 60, { expiresAt: new Date(now.getTime() + 60_000).toISOString() }), grantCmd(id('g'), u, 80, { expiresAt: null })]);
    await world.clock.advance(61_000);
    await run([grantCmd(id('g'), u, 1)]); // expire 60 first (140 → 80: crossed), then the grant (81)
    expect(await kinds(u)).toEqual(['low_balance@80']);
    await world.clock.set(new Date());
  });
});

describe('config changes', () => {
  it('a rule added while an account is below alerts once, at its next transaction — not at every one after', async () => {
    const u = id('added');
    await world.applyConfig({ ...BASE, alerts: { low_balance: [], overdrawn: [] } });
    await run([grantCmd(id('g'), u, 150), chargeCmd(id('c'), u, 100)]); // 50, no rule
    expect(await kinds(u)).toEqual([]);
    await world.applyConfig({ ...BASE, alerts: RULES });
    await run([chargeCmd(id('c'), u, 5)]);
    await run([chargeCmd(id('c'), u, 5)]);
    expect(await kinds(u)).toEqual(['low_balance@45']);
  });

  it('a changed threshold is a new rule: one alert under it; a removed rule is forgotten with the account', async () => {
    const u = id('changed');
    await run([grantCmd(id('g'), u, 150), chargeCmd(id('c'), u, 60)]); // 90 < 100
    await world.applyConfig({ ...BASE, alerts: { ...RULES, low_balance: [{ asset: 'points', below: 200 }] } });
    await run([chargeCmd(id('c'), u, 5)]); // 85 < 200: first time under this rule
    await run([chargeCmd(id('c'), u, 5)]);
    expect(await kinds(u)).toEqual(['low_balance@90', 'low_balance@85']);
    await world.applyConfig({ ...BASE, alerts: { low_balance: [], overdrawn: [] } });
    await run([chargeCmd(id('c'), u, 5)]);
    const [acct] = await world.sql<{ alerts_fired: string[] }[]>`SELECT alerts_fired FROM accounts WHERE user_id = ${u}`;
    expect(acct!.alerts_fired).toEqual([]);
  });
});

describe('under concurrency', () => {
  it('exactly one alert per crossing however many transactions race on the account', async () => {
    const u = id('race');
    await run([grantCmd(id('g'), u, 1000)]);
    // 95 transactions of one charge of 10 each on separate connections: the balance passes 100 once (→ 50).
    await Promise.all(Array.from({ length: 95 }, () => run([chargeCmd(id('c'), u, 10)])));
    expect(await kinds(u)).toEqual(['low_balance@90']);
    await run([grantCmd(id('g'), u, 500)]); // 550: re-armed
    await Promise.all(Array.from({ length: 50 }, () => run([chargeCmd(id('c'), u, 10)])));
    expect(await kinds(u)).toEqual(['low_balance@90', 'low_balance@90']);
    await expectInvariants(world.sql);
  });
});
