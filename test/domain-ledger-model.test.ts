import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { balanceAt, consume, expireLapsed, grant, restore, type AccountState, type BatchState, type DebtState, type Effect, type EntryDraft } from '../src/domain/account.ts';
import { leftToRefund, planRefund, restoreParts, takeRefund, type ChargeLedger } from '../src/domain/refund.ts';

/**
 * The account functions (grant, consume, restore, expireLapsed) and refund planning, driven by random operation
 * sequences and compared after every step — entries, allocations, debt payments, batches, debts, totals, and what
 * the SQL layer would write (the touched sets) — with a small model written from the contract (§3, v2). The model
 * shares no code with src/domain: it keeps every batch and debt it ever made in plain arrays and recomputes the
 * open ones, the burn order and the balance from scratch each time.
 */

// ---- the model -------------------------------------------------------------------------------------------------
interface MBatch { id: number; amount: number; remaining: number; expiresAt: number | null; expired: boolean; loaded: boolean }
interface MDebt { charge: number; amount: number; remaining: number; refunded: number; paidBy: [MBatch, number][]; loaded: boolean }
interface MCharge { burns: [MBatch, number][]; debt: MDebt | null; back: { burn: Map<MBatch, number>; paid: Map<MBatch, number>; unpaid: number } }
interface MEntry {
  kind: string;
  amount: number;
  before: number;
  after: number;
  allocations: [number, number][];
  payments: [number, number, number][];
  batch: number | null;
  debt: number | null;
}
type MSource = { kind: 'unpaid' | 'paid' | 'burn'; batch: MBatch | null; left: number };

const lapsed = (b: MBatch, now: number) => b.expiresAt !== null && b.expiresAt <= now;
const live = (b: MBatch, now: number) => !b.expired && !lapsed(b, now);
/** Soonest expiry first, never last, then creation (ids grow with creation). */
const burnOrder = (a: MBatch, b: MBatch) =>
  a.expiresAt === b.expiresAt ? a.id - b.id : a.expiresAt === null ? 1 : b.expiresAt === null ? -1 : a.expiresAt - b.expiresAt;
const total = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
function merge<K>(list: [K, number][], key: K, amount: number): void {
  const row = list.find(([k]) => k === key);
  if (row) row[1] += amount;
  else list.push([key, amount]);
}

class Model {
  batches: MBatch[] = [];
  debts: MDebt[] = [];
  charges: (MCharge | null)[] = [];
  granted = 0;
  consumed = 0;
  expiredTotal = 0;
  touched = new Set<MBatch>();
  touchedDebts = new Set<MDebt>();

  balance() {
    return this.granted - this.consumed - this.expiredTotal;
  }
  open() {
    return this.batches.filter((b) => !b.expired && b.remaining > 0).sort(burnOrder);
  }
  openDebts() {
    return this.debts.filter((d) => d.remaining > 0);
  }
  debt() {
    return total(this.openDebts().map((d) => d.remaining));
  }
  private touch(b: MBatch) {
    if (b.loaded) this.touched.add(b);
  }
  private touchDebt(d: MDebt) {
    if (d.loaded) this.touchedDebts.add(d);
  }
  private entry(kind: string, amount: number, before: number): MEntry {
    return { kind, amount, before, after: before + amount, allocations: [], payments: [], batch: null, debt: null };
  }

  expire(now: number): MEntry[] {
    const out: MEntry[] = [];
    for (const b of this.open().filter((x) => lapsed(x, now))) {
      const e = this.entry('expire', -b.remaining, this.balance());
      e.batch = b.id;
      b.expired = true;
      this.expiredTotal += b.remaining;
      this.touch(b);
      out.push(e);
    }
    return out;
  }
  /** Open debts, oldest first, take what the open batches hold, in burn order. */
  private payDebts(e: MEntry) {
    for (const b of this.open()) {
      for (const d of this.openDebts()) {
        const pay = Math.min(b.remaining, d.remaining);
        if (pay === 0) continue;
        b.remaining -= pay;
        d.remaining -= pay;
        this.touch(b);
        this.touchDebt(d);
        const row = e.payments.find(([c, id]) => c === d.charge && id === b.id);
        if (row) row[2] += pay;
        else e.payments.push([d.charge, b.id, pay]);
        merge(d.paidBy, b, pay);
      }
    }
  }
  grant(id: number, amount: number, expiresAt: number | null, now: number) {
    const entries = this.expire(now);
    const b: MBatch = { id, amount, remaining: amount, expiresAt, expired: false, loaded: false };
    this.batches.push(b);
    const e = this.entry('grant', amount, this.balance());
    e.batch = id;
    this.granted += amount;
    entries.push(e);
    if (lapsed(b, now)) {
      const x = this.entry('expire', -amount, this.balance());
      x.batch = id;
      b.expired = true;
      this.expiredTotal += amount;
      entries.push(x);
    } else this.payDebts(e);
    return { entries, entry: e };
  }
  consume(amount: number, guarded: boolean, held: number, now: number) {
    const entries = this.expire(now);
    if (guarded && this.balance() - held < amount) {
      this.charges.push(null);
      return { entries, entry: null };
    }
    const e = this.entry('consume', -amount, this.balance());
    let left = amount;
    for (const b of this.open()) {
      const take = Math.min(b.remaining, left);
      if (take === 0) break;
      b.remaining -= take;
      left -= take;
      this.touch(b);
      e.allocations.push([b.id, take]);
    }
    this.consumed += amount;
    let debt: MDebt | null = null;
    if (left > 0) {
      debt = { charge: this.charges.length, amount: left, remaining: left, refunded: 0, paidBy: [], loaded: false };
      this.debts.push(debt);
      e.debt = left;
    }
    const burns = e.allocations.map(([id, n]) => [this.batches.find((b) => b.id === id)!, n] as [MBatch, number]);
    this.charges.push({ burns, debt, back: { burn: new Map(), paid: new Map(), unpaid: 0 } });
    entries.push(e);
    return { entries, entry: e };
  }
  /** What is left to give back of a charge, source by source, in charge order: burns, unpaid debt, payers. */
  sources(c: MCharge): MSource[] {
    const out: MSource[] = [];
    for (const [b, n] of c.burns) if (n - (c.back.burn.get(b) ?? 0) > 0) out.push({ kind: 'burn', batch: b, left: n - (c.back.burn.get(b) ?? 0) });
    if (c.debt) {
      if (c.debt.remaining > 0) out.push({ kind: 'unpaid', batch: null, left: c.debt.remaining });
      for (const [b, n] of c.debt.paidBy) if (n - (c.back.paid.get(b) ?? 0) > 0) out.push({ kind: 'paid', batch: b, left: n - (c.back.paid.get(b) ?? 0) });
    }
    return out;
  }
  /** Newest first: the unpaid debt, live payers and live burns latest-expiring first; parts that cannot come back last. */
  plan(c: MCharge, amount: number, now: number) {
    const srcs = this.sources(c);
    const alive = (s: MSource) => s.batch === null || live(s.batch, now);
    const newestFirst = (a: MSource, b: MSource) => burnOrder(b.batch!, a.batch!);
    const order = [
      ...srcs.filter((s) => s.kind === 'unpaid'),
      ...srcs.filter((s) => s.kind === 'paid' && alive(s)).sort(newestFirst),
      ...srcs.filter((s) => s.kind === 'burn' && alive(s)).sort(newestFirst),
      ...srcs.filter((s) => !alive(s)),
    ];
    const plan: { s: MSource; take: number; alive: boolean }[] = [];
    let want = amount;
    for (const s of order) {
      const take = Math.min(s.left, want);
      if (take > 0) plan.push({ s, take, alive: alive(s) });
      want -= take;
    }
    return plan;
  }
  refund(c: MCharge, plan: { s: MSource; take: number; alive: boolean }[], now: number) {
    const entries = this.expire(now);
    const allocations: [number, number][] = [];
    let back = 0;
    for (const { s, take, alive } of plan) {
      if (s.kind === 'unpaid') {
        c.debt!.remaining -= take;
        c.debt!.refunded += take;
        c.back.unpaid += take;
        this.touchDebt(c.debt!);
        back += take;
        continue;
      }
      const map = s.kind === 'paid' ? c.back.paid : c.back.burn;
      map.set(s.batch!, (map.get(s.batch!) ?? 0) + take);
      if (!alive) continue;
      s.batch!.remaining += take;
      this.touch(s.batch!);
      merge(allocations, s.batch!.id, take);
      back += take;
    }
    if (back === 0) return { entries, entry: null };
    const e = this.entry('refund', back, this.balance());
    e.allocations = allocations;
    this.consumed -= back;
    this.payDebts(e);
    entries.push(e);
    return { entries, entry: e };
  }
  commit() {
    for (const b of this.batches) b.loaded = true;
    for (const d of this.debts) d.loaded = true;
    this.touched.clear();
    this.touchedDebts.clear();
  }
}

// ---- driving both ----------------------------------------------------------------------------------------------
type Op =
  | { k: 'grant'; amount: number; exp: 'past' | 'now' | 'next' | 'later' | 'far' | 'never' }
  | { k: 'charge'; amount: number; guarded: boolean; held: number }
  | { k: 'refund'; of: number; amount: number | null }
  | { k: 'sweep' }
  | { k: 'commit' };

const STEP = 10;
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('grant' as const), amount: fc.integer({ min: 1, max: 20 }), exp: fc.constantFrom('past', 'now', 'next', 'later', 'far', 'never') }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('charge' as const), amount: fc.integer({ min: 1, max: 25 }), guarded: fc.boolean(), held: fc.constantFrom(0, 0, 1, 3) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('refund' as const), of: fc.nat(), amount: fc.option(fc.integer({ min: 1, max: 15 }), { nil: null }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('sweep' as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('commit' as const) }) },
);
const script = fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), op), { minLength: 1, maxLength: 40, size: 'medium' });

function shown(m: { entries: MEntry[]; entry: MEntry | null }) {
  return { entries: m.entries, own: m.entry === null ? null : m.entries.indexOf(m.entry) };
}

/** expect(got).toEqual(want), with a cheap check first: each run compares thousands of states, and expect() is slow. */
function agree(got: unknown, want: unknown): void {
  if (JSON.stringify(got) !== JSON.stringify(want)) expect(got).toEqual(want);
}

function newAccount(): AccountState {
  return { id: 1n, userId: 'u', asset: 'points', balance: 0n, debt: 0n, totalGranted: 0n, totalConsumed: 0n, totalExpired: 0n, batches: [], debts: [], touched: new Set(), touchedDebts: new Set() };
}

class Harness {
  acct = newAccount();
  model = new Model();
  batches: BatchState[] = [];
  debts = new Map<DebtState, number>();
  charges: (ChargeLedger | null)[] = [];
  nextId = 1;

  /** An effect as the model shows one: its entries, and which of them is the operation's own (null: none). */
  entries(effect: Effect) {
    const shown = effect.entries.map((e: EntryDraft): MEntry => ({
      kind: e.kind,
      amount: Number(e.amount),
      before: Number(e.balanceBefore),
      after: Number(e.balanceAfter),
      allocations: e.allocations.map((a) => [Number(a.batch.id), Number(a.amount)]),
      payments: e.payments.map((p) => [this.debts.get(p.debt)!, Number(p.batch.id), Number(p.amount)]),
      batch: e.batch ? Number(e.batch.id) : null,
      debt: e.debt ? Number(e.debt.amount) : null,
    }));
    return { entries: shown, own: effect.entry === null ? null : effect.entries.indexOf(effect.entry) };
  }

  step(o: Op, now: number) {
    const { acct, model } = this;
    if (o.k === 'grant') {
      const at = { past: now - STEP, now, next: now + 1, later: now + 2 * STEP, far: now + 100 * STEP, never: null }[o.exp];
      const id = this.nextId++;
      const got = grant(acct, { amount: BigInt(o.amount), expiresAt: at, source: 'test', sourceId: null, batchId: BigInt(id), entryId: 0n }, now);
      this.batches.push(got.entry!.batch!);
      agree(got.entry!.batch!.isNew, true);
      const want = model.grant(id, o.amount, at, now);
      agree(this.entries(got), shown(want));
    } else if (o.k === 'charge') {
      const got = consume(acct, BigInt(o.amount), o.guarded ? 'guarded' : 'postpaid', BigInt(o.held), now);
      const want = model.consume(o.amount, o.guarded, o.held, now);
      const debt = got.entry?.debt;
      if (debt) {
        agree(debt.isNew, true);
        this.debts.set(debt, this.charges.length);
      }
      this.charges.push(got.entry ? { burns: got.entry.allocations.map((a) => ({ ...a })), debt: debt ?? null, refunded: { burn: new Map(), paid: new Map(), unpaid: 0n } } : null);
      agree(this.entries(got), shown(want));
    } else if (o.k === 'refund') {
      if (this.charges.length === 0) return;
      const k = o.of % this.charges.length;
      const charge = this.charges[k];
      const mc = model.charges[k];
      if (!charge || !mc) return;
      const left = leftToRefund(charge);
      agree(Number(left), total(model.sources(mc).map((s) => s.left)));
      if (left === 0n) return;
      // A request above what is left is refused before the domain sees it (refund_exceeds_charge, src/ledger).
      const requested = Math.min(o.amount ?? Number(left), Number(left));
      const plan = planRefund(charge, BigInt(requested), now);
      const parts = restoreParts(plan);
      const got = restore(acct, parts, now);
      takeRefund(charge, plan);
      const mplan = model.plan(mc, requested, now);
      agree(
        plan.map((p, i) => [p.source.kind, p.source.kind === 'unpaid' ? null : Number(p.source.batch.id), Number(p.amount), parts[i]!.restored]),
        mplan.map((p) => [p.s.kind, p.s.batch?.id ?? null, p.take, p.alive]),
      );
      const want = model.refund(mc, mplan, now);
      agree(this.entries(got), shown(want));
      agree(Number(leftToRefund(charge)), total(model.sources(mc).map((s) => s.left)));
    } else if (o.k === 'sweep') {
      const got = expireLapsed(acct, now);
      agree(this.entries({ entries: got, entry: got.at(-1) ?? null }).entries, model.expire(now));
    } else {
      // A transaction ends: what it made is now loaded state, and nothing is left to write.
      for (const b of this.batches) b.isNew = false;
      for (const d of this.debts.keys()) d.isNew = false;
      acct.touched.clear();
      acct.touchedDebts.clear();
      model.commit();
    }
    this.compare(now);
  }

  compare(now: number) {
    const { acct, model } = this;
    const byId = (b: { id: number }) => b.id;
    agree({
      balance: Number(acct.balance),
      debt: Number(acct.debt),
      granted: Number(acct.totalGranted),
      consumed: Number(acct.totalConsumed),
      expired: Number(acct.totalExpired),
      open: acct.batches.map((b) => [Number(b.id), Number(b.remaining)]),
      openDebts: acct.debts.map((d) => this.debts.get(d)),
      batches: this.batches.map((b) => [Number(b.id), Number(b.remaining), b.expired]),
      debts: [...this.debts].map(([d, k]) => [k, Number(d.remaining), Number(d.refunded), d.paidBy.map((p) => [Number(p.batch.id), Number(p.amount)])]),
      touched: [...acct.touched].map((b) => Number(b.id)).sort((a, b) => a - b),
      touchedDebts: [...acct.touchedDebts].map((d) => this.debts.get(d)).sort(),
    }, {
      balance: model.balance(),
      debt: model.debt(),
      granted: model.granted,
      consumed: model.consumed,
      expired: model.expiredTotal,
      open: model.open().map((b) => [b.id, b.remaining]),
      openDebts: model.openDebts().map((d) => d.charge),
      batches: model.batches.map((b) => [b.id, b.remaining, b.expired]),
      debts: model.debts.map((d) => [d.charge, d.remaining, d.refunded, d.paidBy.map(([b, n]) => [b.id, n])]),
      touched: [...model.touched].map(byId).sort((a, b) => a - b),
      touchedDebts: [...model.touchedDebts].map((d) => d.charge).sort(),
    });
    // Read-time balance, later on, without closing anything.
    for (const later of [now, now + STEP, now + 3 * STEP]) {
      const counted = total(model.open().filter((b) => !lapsed(b, later)).map((b) => b.remaining));
      agree(Number(balanceAt(acct, later)), counted - model.debt());
    }
  }
}

describe('the account against a model (fast-check)', () => {
  it('grants, guarded and post-paid charges, partial and full refunds, expiries and time agree with the model, step by step', () => {
    fc.assert(
      fc.property(script, (steps) => {
        const h = new Harness();
        let now = 1_000;
        for (const [advance, o] of steps) {
          now += advance * STEP;
          h.step(o, now);
        }
      }),
      { numRuns: 400 },
    );
  });
});
