import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigCache } from '../src/config/store.ts';
import { applyLedgerCommands } from '../src/ledger/apply.ts';
import type { LedgerCommand } from '../src/ledger/commands.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { chargeCmd, grantCmd, refundCmd } from './helpers/ledger-commands.ts';

/**
 * Random grants, charges, refunds and expiries — several per transaction, in any order, with time moving between
 * transactions — through the real ledger transaction, compared step by step with a tiny model written from the
 * contract (it shares no code with src/domain). The model counts every batch, debt and refund part by hand.
 */
let world: TestWorld;
const configs = new ConfigCache();

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
});
afterAll(async () => {
  await world?.drop();
});

// ---- the model -------------------------------------------------------------------------------------------------
interface MBatch { key: string; seq: number; amount: number; remaining: number; expiresAt: number | null; expired: boolean }
interface MDebt { amount: number; remaining: number; refunded: number; paidBy: Map<MBatch, number> }
interface MUser { batches: MBatch[]; debts: MDebt[]; granted: number; consumed: number; expiredTotal: number }
interface MCharge { user: MUser; burns: Map<MBatch, number>; debt: MDebt | null; back: { burn: Map<MBatch, number>; paid: Map<MBatch, number>; unpaid: number } }

const lapsed = (b: MBatch, now: number) => b.expiresAt !== null && b.expiresAt <= now;
const live = (b: MBatch, now: number) => !b.expired && !lapsed(b, now);
const order = (a: MBatch, b: MBatch) =>
  a.expiresAt === b.expiresAt ? a.seq - b.seq : a.expiresAt === null ? 1 : b.expiresAt === null ? -1 : a.expiresAt - b.expiresAt;
const sum = (xs: Iterable<number>) => [...xs].reduce((s, x) => s + x, 0);
const add = <K>(m: Map<K, number>, k: K, v: number) => m.set(k, (m.get(k) ?? 0) + v);

class Model {
  users = new Map<string, MUser>();
  charges = new Map<string, MCharge | null>();
  seq = 0;
  user(id: string): MUser {
    let u = this.users.get(id);
    if (!u) this.users.set(id, (u = { batches: [], debts: [], granted: 0, consumed: 0, expiredTotal: 0 }));
    return u;
  }
  debt(u: MUser) {
    return sum(u.debts.map((d) => d.remaining));
  }
  balance(u: MUser) {
    return sum(u.batches.filter((b) => !b.expired).map((b) => b.remaining)) - this.debt(u);
  }
  expire(u: MUser, now: number) {
    for (const b of u.batches) {
      // A batch burned to nothing is closed, not expired: nothing expires with it.
      if (!b.expired && b.remaining > 0 && lapsed(b, now)) {
        b.expired = true;
        u.expiredTotal += b.remaining;
      }
    }
  }
  /** Open debts, oldest first, are paid from live batches in burn order. */
  payDebts(u: MUser, now: number) {
    for (const b of u.batches.filter((x) => live(x, now)).sort(order)) {
      for (const d of u.debts) {
        const pay = Math.min(b.remaining, d.remaining);
        if (pay === 0) continue;
        b.remaining -= pay;
        d.remaining -= pay;
        add(d.paidBy, b, pay);
      }
    }
  }
  grant(key: string, userId: string, amount: number, expiresAt: number | null, now: number) {
    const u = this.user(userId);
    this.expire(u, now);
    const b: MBatch = { key, seq: this.seq++, amount, remaining: amount, expiresAt, expired: false };
    u.batches.push(b);
    u.granted += amount;
    if (lapsed(b, now)) {
      b.expired = true;
      u.expiredTotal += amount;
    } else this.payDebts(u, now);
    return { outcome: 'applied', balance_after: this.balance(u) };
  }
  charge(key: string, userId: string, amount: number, guarded: boolean, now: number) {
    const u = this.user(userId);
    this.expire(u, now);
    if (guarded && this.balance(u) < amount) {
      this.charges.set(key, null);
      return { outcome: 'rejected_insufficient', balance_after: this.balance(u) };
    }
    const c: MCharge = { user: u, burns: new Map(), debt: null, back: { burn: new Map(), paid: new Map(), unpaid: 0 } };
    let left = amount;
    for (const b of u.batches.filter((x) => live(x, now)).sort(order)) {
      const take = Math.min(b.remaining, left);
      if (take === 0) continue;
      b.remaining -= take;
      left -= take;
      add(c.burns, b, take);
    }
    if (left > 0) u.debts.push((c.debt = { amount: left, remaining: left, refunded: 0, paidBy: new Map() }));
    u.consumed += amount;
    this.charges.set(key, c);
    return { outcome: 'applied', balance_after: this.balance(u) };
  }
  refund(chargeKey: string, amount: number | null, now: number) {
    const c = this.charges.get(chargeKey);
    if (!c) return { outcome: 'refund_exceeds_charge' };
    const u = c.user;
    this.expire(u, now);
    // What is left, source by source: the unpaid debt, what batches paid of it, what the charge burned.
    type Src = { kind: 'unpaid' | 'paid' | 'burn'; batch: MBatch | null; left: number };
    const srcs: Src[] = [];
    if (c.debt) {
      let debtLeft = c.debt.amount - c.back.unpaid - sum(c.back.paid.values());
      const unpaid = Math.min(c.debt.remaining, debtLeft);
      if (unpaid > 0) srcs.push({ kind: 'unpaid', batch: null, left: unpaid });
      debtLeft -= Math.max(unpaid, 0);
      for (const [b, paid] of c.debt.paidBy) {
        const l = Math.min(paid - (c.back.paid.get(b) ?? 0), debtLeft);
        if (l <= 0) continue;
        debtLeft -= l;
        srcs.push({ kind: 'paid', batch: b, left: l });
      }
    }
    for (const [b, burned] of c.burns) {
      const l = burned - (c.back.burn.get(b) ?? 0);
      if (l > 0) srcs.push({ kind: 'burn', batch: b, left: l });
    }
    const total = sum(srcs.map((s) => s.left));
    const requested = amount ?? total;
    if (total === 0 || requested > total) return { outcome: 'refund_exceeds_charge' };
    const alive = (s: Src) => s.batch === null || live(s.batch, now);
    const desc = (a: Src, b: Src) => order(b.batch!, a.batch!);
    const plan = [
      ...srcs.filter((s) => s.kind === 'unpaid'),
      ...srcs.filter((s) => s.kind === 'paid' && alive(s)).sort(desc),
      ...srcs.filter((s) => s.kind === 'burn' && alive(s)).sort(desc),
      ...srcs.filter((s) => !alive(s)),
    ];
    let want = requested;
    let restored = 0;
    for (const s of plan) {
      const take = Math.min(s.left, want);
      if (take === 0) continue;
      want -= take;
      if (s.kind === 'unpaid') {
        c.debt!.remaining -= take;
        c.debt!.refunded += take;
        c.back.unpaid += take;
        restored += take;
        continue;
      }
      add(s.kind === 'paid' ? c.back.paid : c.back.burn, s.batch!, take);
      if (alive(s)) {
        s.batch!.remaining += take;
        restored += take;
      }
    }
    u.consumed -= restored;
    this.payDebts(u, now);
    return { outcome: 'applied', amount: restored, balance_after: this.balance(u) };
  }
}

// ---- the ops ---------------------------------------------------------------------------------------------------
type Op =
  | { k: 'grant'; user: number; amount: number; exp: 'past' | 'now' | 'next' | 'later' | 'never' | 'far' }
  | { k: 'charge'; user: number; amount: number; guarded: boolean }
  | { k: 'refund'; of: number; amount: number | null };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('grant' as const), user: fc.integer({ min: 0, max: 1 }), amount: fc.integer({ min: 1, max: 20 }), exp: fc.constantFrom('past', 'now', 'next', 'later', 'never', 'far') }),
  fc.record({ k: fc.constant('charge' as const), user: fc.integer({ min: 0, max: 1 }), amount: fc.integer({ min: 1, max: 25 }), guarded: fc.boolean() }),
  fc.record({ k: fc.constant('refund' as const), of: fc.nat(), amount: fc.option(fc.integer({ min: 1, max: 12 }), { nil: null }) }),
);
/** Transactions of 1–6 ops, each after the clock moved 0–3 steps of a second. */
const script = fc.array(fc.record({ advance: fc.integer({ min: 0, max: 3 }), ops: fc.array(op, { minLength: 1, maxLength: 6 }) }), { minLength: 1, maxLength: 6 });

const STEP = 1000;
let run = 0;

async function check(txs: { advance: number; ops: Op[] }[]) {
  const r = ++run;
  const model = new Model();
  const users = [`m${r}-a`, `m${r}-b`];
  const chargeKeys: string[] = [];
  let now = Date.UTC(2030, 0, 1) + r * 1_000_000;
  let n = 0;
  const { doc } = await configs.get(world.sql);
  for (const t of txs) {
    now += t.advance * STEP;
    const cmds: LedgerCommand[] = [];
    const expected: Record<string, unknown>[] = [];
    for (const o of t.ops) {
      const key = `m${r}-${n++}`;
      if (o.k === 'grant') {
        const at = { past: now - STEP, now, next: now + 1, later: now + 2 * STEP, far: now + 100 * STEP, never: null }[o.exp];
        cmds.push(grantCmd(key, users[o.user]!, o.amount, { expiresAt: at === null ? null : new Date(at).toISOString() }));
        expected.push(model.grant(key, users[o.user]!, o.amount, at, now));
      } else if (o.k === 'charge') {
        cmds.push(chargeCmd(key, users[o.user]!, o.amount, { policy: o.guarded ? 'guarded' : 'postpaid' }));
        expected.push(model.charge(key, users[o.user]!, o.amount, o.guarded, now));
        chargeKeys.push(key);
      } else {
        if (chargeKeys.length === 0) continue;
        const of = chargeKeys[o.of % chargeKeys.length]!;
        cmds.push(refundCmd(key, of, o.amount));
        expected.push(model.refund(of, o.amount, now));
      }
    }
    if (cmds.length === 0) continue;
    const report = await world.sql.begin((tx) => applyLedgerCommands(tx, cmds, { config: doc, now: new Date(now) }));
    const actual = report.outcomes.map((o, i) => {
      if (!o.ok) return { outcome: o.error.code };
      const res = o.result as Record<string, unknown>;
      return cmds[i]!.op === 'refund' ? { outcome: res.outcome, amount: res.amount, balance_after: res.balance_after } : { outcome: res.outcome, balance_after: res.balance_after };
    });
    expect(actual).toEqual(expected);
  }
  for (const id of users) {
    const u = model.users.get(id);
    if (!u) continue;
    const [acct] = await world.sql<{ balance: bigint; debt: bigint; total_granted: bigint; total_consumed: bigint; total_expired: bigint }[]>`
      SELECT balance, debt, total_granted, total_consumed, total_expired FROM accounts WHERE user_id = ${id}`;
    expect({ balance: Number(acct!.balance), debt: Number(acct!.debt), granted: Number(acct!.total_granted), consumed: Number(acct!.total_consumed), expired: Number(acct!.total_expired) }).toEqual({
      balance: model.balance(u),
      debt: model.debt(u),
      granted: u.granted,
      consumed: u.consumed,
      expired: u.expiredTotal,
    });
    const rows = await world.sql<{ event_id: string; remaining: bigint; expired: boolean }[]>`
      SELECT e.event_id, b.remaining, b.expired FROM batches b JOIN ledger_entries e ON e.entry_id = b.grant_entry_id
      JOIN accounts a ON a.account_id = b.account_id WHERE a.user_id = ${id} ORDER BY b.batch_id`;
    expect(rows.map((b) => [b.event_id, Number(b.remaining), b.expired])).toEqual(u.batches.map((b) => [b.key, b.remaining, b.expired]));
  }
}

describe('the ledger against a model', () => {
  it('random grants, charges, refunds and expiries, batched in any order, agree with the model', async () => {
    const seed = Number(process.env.LEDGER_MODEL_SEED ?? Date.now() % 2 ** 31);
    console.log(`ledger model: seed ${seed} (LEDGER_MODEL_SEED=${seed} replays it)`);
    await fc.assert(fc.asyncProperty(script, check), { numRuns: Number(process.env.LEDGER_MODEL_RUNS ?? 60), seed });
    await expectInvariants(world.sql);
  }, 180_000);
});
