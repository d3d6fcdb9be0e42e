/**
 * The reference model of tally: what every job, hold request, decay run and read must answer, computed from
 * CONTRACT v2 alone (plus the README decisions listed in docs/simulation.md). Small, slow and plain; it imports
 * nothing from src/ — a model that shares code with what it checks proves nothing.
 *
 * State is per user (accounts, holds, charges, devices, decisions), as plain data, so the driver can try an
 * ordering of one user's concurrent events on a copy (`structuredClone`) before committing it.
 */
import { applyChange, decay, decideAdjust, decideEvent, levelOf, newDevice, type Device } from './affinity.ts';
import { canonical, levelsOf, timezoneOf, type ConfigDoc } from './config.ts';
import { dayOf } from './days.ts';
import { balanceOf, consume, grant, newAccount, refund, refundableOf, type Account } from './ledger.ts';
import { price, quote, type Usage } from './pricing.ts';
import { newUser, type UserState } from './state.ts';
import { viewOf, type UserView } from './view.ts';

export { newUser, type UserState };

export type Queue = 'grants' | 'charges' | 'affinity-events';

/** A job as sent: its queue, payload, and the job's own timestamp (what tally takes as "enqueued at"). */
export interface Job {
  queue: Queue;
  payload: Record<string, any>;
  timestamp: number;
}

/** What a job must end with: a result (§3 ApplyResult), or a failure with its stable code. */
export type Expected = { ok: true; result: Record<string, unknown> } | { ok: false; code: string };

/** `transaction_id` in an expected result: an entry was written (its id is tally's), or none. */
export const PRESENT = 'present';

export interface ConfigVersion {
  doc: ConfigDoc;
  canon: string;
  /** The instant of the apply; tally's applied_at lies within [appliedAt, appliedAt + slack). */
  appliedAt: number;
}

/** §3: more than 5 minutes in the future is bad input. */
const FUTURE_MS = 5 * 60_000;
const DAY_MS = 86_400_000;
const ok = (result: Record<string, unknown>): Expected => ({ ok: true, result });
const fail = (code: string): Expected => ({ ok: false, code });
const num = (n: bigint) => Number(n);

export class Model {
  now = 0;
  readonly versions: ConfigVersion[] = [];
  readonly users = new Map<string, UserState>();

  /** `slack`: how long after an instant tally may still be acting on it (the driver's clock pin; see docs). */
  constructor(readonly slack: number) {}

  get doc(): ConfigDoc {
    return this.versions.at(-1)?.doc ?? { assets: {} };
  }

  /** §1/§6 config apply: a new version, unless the document is the one in force (README: then a no-op). */
  applyConfig(doc: ConfigDoc): boolean {
    const canon = canonical(doc);
    if (this.versions.at(-1)?.canon === canon) return false;
    this.versions.push({ doc, canon, appliedAt: this.now });
    return true;
  }

  /**
   * The config in force at `at` for pricing (README/docs money: the newest version applied at or before the
   * usage's occurred_at; before every version, the oldest). The driver keeps `at` out of [appliedAt, +slack).
   */
  docAt(at: number): ConfigDoc {
    let found = this.versions[0];
    for (const v of this.versions) if (v.appliedAt + this.slack <= at) found = v;
    return found?.doc ?? { assets: {} };
  }

  user(id: string): UserState {
    let u = this.users.get(id);
    if (!u) this.users.set(id, (u = newUser()));
    return u;
  }

  /**
   * Applies one job to `u` (the state of the user it belongs to; a refund belongs to its charge's user) and
   * says what tally must answer. On a failure nothing changes.
   */
  apply(u: UserState, job: Job): Expected {
    const p = job.payload;
    const key = `${job.queue}|${p.event_id}`;
    const canon = canonical(p);
    const prior = u.decisions.get(key);
    // §3 (v2): a replay is recognised before any config-dependent check.
    if (prior) {
      if (prior.canon !== canon) return fail('idempotency_conflict');
      return ok({ ...prior.result, outcome: 'noop_duplicate', original_outcome: prior.result.outcome });
    }
    const out = this.decide(u, job);
    if (out.ok) u.decisions.set(key, { canon, result: out.result });
    return out;
  }

  private decide(u: UserState, job: Job): Expected {
    const p = job.payload;
    switch (p.type) {
      case 'grant':
        return this.grant(u, p);
      case 'reward.event':
        return this.reward(u, p);
      case 'charge':
        return p.hold_id !== undefined ? this.settle(u, p) : this.charge(u, p);
      case 'refund':
        return this.refund(u, p);
      case 'affinity.event':
        return this.affinityEvent(u, p);
      case 'affinity.adjust':
        return this.affinityAdjust(u, p, job.timestamp);
      default:
        return fail('invalid_payload');
    }
  }

  private account(u: UserState, asset: string): Account {
    let a = u.accounts.get(asset);
    if (!a) u.accounts.set(asset, (a = newAccount(asset)));
    return a;
  }

  /** §3 grants: `expires_at` absent → the asset's default_expiry_days from now (null = never). */
  private defaultExpiry(asset: string): { expiresAt: number | null; fuzzy: boolean } {
    const days = this.doc.assets[asset]?.default_expiry_days ?? null;
    return days === null ? { expiresAt: null, fuzzy: false } : { expiresAt: this.now + days * DAY_MS, fuzzy: true };
  }

  private grant(u: UserState, p: Record<string, any>): Expected {
    if (!this.doc.assets[p.asset]) return fail('invalid_payload');
    const expiry = p.expires_at === undefined ? this.defaultExpiry(p.asset) : { expiresAt: p.expires_at === null ? null : Date.parse(p.expires_at), fuzzy: false };
    const after = grant(this.account(u, p.asset), u.charges, { amount: BigInt(p.amount), ...expiry, source: p.source, eventId: p.event_id }, this.now);
    return ok({ outcome: 'applied', transaction_id: PRESENT, amount: p.amount, balance_after: num(after) });
  }

  /** §3 reward.event: the matching rule of the config in force, capped per receiver per natural day. */
  private reward(u: UserState, p: Record<string, any>): Expected {
    const at = Date.parse(p.occurred_at);
    if (at > this.now + FUTURE_MS) return fail('invalid_payload');
    const rule = this.doc.rewards?.[p.event_type];
    if (!rule) return ok({ outcome: 'noop_no_rule', transaction_id: null, amount: 0 });
    // (v2) a missing or empty event_version means the newest version the rule lists (the last one).
    const version = p.event_version === undefined || p.event_version === '' ? rule.versions.at(-1) : p.event_version;
    if (!rule.versions.includes(version)) return fail('unsupported_version');
    const key = `${p.event_type}|${dayOf(at, timezoneOf(this.doc))}`;
    const count = u.rewardDays.get(key) ?? 0;
    const a = this.account(u, rule.asset);
    if (rule.daily_cap !== undefined && count >= rule.daily_cap) {
      return ok({ outcome: 'noop_reward_daily_cap', transaction_id: null, amount: 0, balance_after: num(balanceOf(a, this.now)) });
    }
    u.rewardDays.set(key, count + 1);
    const after = grant(a, u.charges, { amount: BigInt(rule.amount), ...this.defaultExpiry(rule.asset), source: 'reward', eventId: p.event_id }, this.now);
    return ok({ outcome: 'applied', transaction_id: PRESENT, amount: rule.amount, balance_after: num(after) });
  }

  /** §4: what active holds not past their expires_at reserve. */
  held(u: UserState, asset: string): bigint {
    let sum = 0n;
    for (const h of u.holds.values()) if (h.asset === asset && h.status === 'active' && h.expiresAt > this.now) sum += h.amount;
    return sum;
  }

  /** The price of a charge without `amount`: the rule in force at its occurred_at; missing → bad input. */
  private priceAt(p: Record<string, any>, at: number): { cost: bigint } | { error: string } {
    const rule = this.docAt(at).pricing?.[p.asset]?.[p.source_type];
    if (!rule) return { error: 'no pricing' };
    return price(rule, p.usage as Usage | undefined);
  }

  private charge(u: UserState, p: Record<string, any>): Expected {
    const at = Date.parse(p.occurred_at);
    if (at > this.now + FUTURE_MS) return fail('invalid_payload');
    if (!this.doc.assets[p.asset]) return fail('invalid_payload');
    const priced = p.amount !== undefined ? { cost: BigInt(p.amount) } : this.priceAt(p, at);
    if ('error' in priced) return fail('invalid_payload');
    const a = this.account(u, p.asset);
    const b = num(balanceOf(a, this.now));
    const nothing = () => u.charges.set(p.event_id, { asset: p.asset, amount: 0n, refunded: 0n, burned: [], unpaid: 0n, paidBy: [] });
    if (priced.cost === 0n) {
      nothing();
      return ok({ outcome: 'noop_free', transaction_id: null, amount: 0, balance_before: b, balance_after: b });
    }
    // §3 guarded: only if the available balance (balance − held, §4) covers it.
    if (p.policy === 'guarded' && balanceOf(a, this.now) - this.held(u, p.asset) < priced.cost) {
      nothing();
      return ok({ outcome: 'rejected_insufficient', transaction_id: null, amount: num(priced.cost), balance_before: b, balance_after: b });
    }
    const r = consume(a, u.charges, p.event_id, priced.cost, this.now);
    return ok({ outcome: 'applied', transaction_id: PRESENT, amount: num(priced.cost), balance_before: num(r.before), balance_after: num(r.after) });
  }

  /**
   * §3/§4 settle: a charge with hold_id charges the actual cost post-paid (what exceeds the hold may overdraw)
   * and the hold stops counting. README: no usage and no amount → the hold's estimate; a hold settled
   * already, or unknown → unknown_hold; a released or lapsed hold still charges the work done.
   */
  private settle(u: UserState, p: Record<string, any>): Expected {
    const at = Date.parse(p.occurred_at);
    if (at > this.now + FUTURE_MS) return fail('invalid_payload');
    if (!this.doc.assets[p.asset]) return fail('invalid_payload');
    let priced: { cost: bigint } | { error: string } | undefined;
    if (p.amount !== undefined) priced = { cost: BigInt(p.amount) };
    else if (p.usage !== undefined) priced = this.priceAt(p, at);
    if (priced && 'error' in priced) return fail('invalid_payload');
    const hold = u.holds.get(p.hold_id);
    if (!hold || hold.status === 'settled') return fail('unknown_hold');
    if (hold.asset !== p.asset) return fail('invalid_payload');
    hold.status = 'settled';
    const cost = priced ? priced.cost : hold.amount;
    const a = this.account(u, p.asset);
    const b = num(balanceOf(a, this.now));
    if (cost === 0n) {
      u.charges.set(p.event_id, { asset: p.asset, amount: 0n, refunded: 0n, burned: [], unpaid: 0n, paidBy: [] });
      return ok({ outcome: 'noop_free', transaction_id: null, amount: 0, balance_before: b, balance_after: b });
    }
    const r = consume(a, u.charges, p.event_id, cost, this.now);
    return ok({ outcome: 'applied', transaction_id: PRESENT, amount: num(cost), balance_before: num(r.before), balance_after: num(r.after) });
  }

  /**
   * §3 refunds: (part of) what is left refundable; more → refund_exceeds_charge (also for a charge that
   * charged nothing). (v2) a charge never applied → unknown_charge (after tally's wait for it).
   */
  private refund(u: UserState, p: Record<string, any>): Expected {
    const c = u.charges.get(p.charge_event_id);
    if (!c) return fail('unknown_charge');
    const left = refundableOf(c);
    const requested = p.amount === undefined ? left : BigInt(p.amount);
    if (left === 0n || requested > left) return fail('refund_exceeds_charge');
    const r = refund(this.account(u, c.asset), u.charges, p.charge_event_id, p.event_id, requested, this.now);
    return ok({ outcome: 'applied', transaction_id: r.restored > 0n ? PRESENT : null, amount: num(r.restored), balance_before: num(r.before), balance_after: num(r.after) });
  }

  private device(u: UserState, id: string): Device {
    let d = u.devices.get(id);
    if (!d) u.devices.set(id, (d = newDevice()));
    return d;
  }

  private affinityEvent(u: UserState, p: Record<string, any>): Expected {
    const at = Date.parse(p.occurred_at);
    if (at > this.now + FUTURE_MS) return fail('invalid_payload');
    const dev = this.device(u, p.device_id);
    const { outcome, change } = decideEvent(dev, this.doc, p.rule_key, p.metadata?.units ?? 1, at);
    return this.affinityResult(u, dev, outcome, change, at, outcome === 'applied' ? p.rule_key : null);
  }

  /** README: an adjust is activity at its job's enqueue time (it carries no occurred_at). */
  private affinityAdjust(u: UserState, p: Record<string, any>, timestamp: number): Expected {
    const dev = this.device(u, p.device_id);
    const { outcome, change } = decideAdjust(dev, this.doc, p.delta);
    return this.affinityResult(u, dev, outcome, change, timestamp, null, outcome === 'applied');
  }

  /**
   * §3 result `{outcome, change, before, after, level_before, level_after, rewards}`; each level crossed for
   * the first time ever grants its rewards (grants of the asset's default expiry) in the same transaction.
   */
  private affinityResult(u: UserState, dev: Device, outcome: string, change: number, at: number, ruleKey: string | null, adjusted = false): Expected {
    const levels = levelsOf(this.doc);
    const before = dev.value;
    const rewards: { level: number; asset: string; amount: number }[] = [];
    if (outcome === 'applied' && (ruleKey !== null || adjusted)) {
      for (const level of applyChange(dev, this.doc, change, at, ruleKey)) {
        for (const r of level.rewards ?? []) {
          grant(this.account(u, r.asset), u.charges, { amount: BigInt(r.amount), ...this.defaultExpiry(r.asset), source: null, eventId: null }, this.now);
          rewards.push({ level: level.level, asset: r.asset, amount: r.amount });
        }
      }
    }
    return ok({ outcome, change, before, after: dev.value, level_before: levelOf(levels, before), level_after: levelOf(levels, dev.value), rewards });
  }

  /** §4 POST /v1/holds: 201 `{amount}`, 402 insufficient, 409 idempotency_conflict, 422 bad request. */
  placeHold(u: UserState, req: Record<string, any>, holdId: string | undefined): { status: number; amount?: number; holdId?: string } {
    const canon = canonical(req);
    const existing = u.holdByEvent.get(req.event_id);
    if (existing) {
      const h = u.holds.get(existing)!;
      return h.canon === canon ? { status: 201, amount: num(h.amount), holdId: h.holdId } : { status: 409 };
    }
    if (!this.doc.assets[req.asset]) return { status: 422 };
    let amount: bigint;
    if (req.amount !== undefined) amount = BigInt(req.amount);
    else {
      const rule = this.doc.pricing?.[req.asset]?.[req.source_type];
      if (!rule) return { status: 422 };
      const q = quote(rule, req.usage_estimate as Usage | undefined);
      if ('error' in q) return { status: 422 };
      amount = q.cost;
    }
    const a = this.account(u, req.asset);
    // README: an overdrawn account cannot place holds.
    if (balanceOf(a, this.now) - this.held(u, req.asset) < amount || a.debt > 0n) return { status: 402 };
    if (holdId === undefined) return { status: 201, amount: num(amount) };
    u.holds.set(holdId, { holdId, eventId: req.event_id, canon, asset: req.asset, amount, expiresAt: this.now + req.ttl_seconds * 1000, status: 'active' });
    u.holdByEvent.set(req.event_id, holdId);
    return { status: 201, amount: num(amount), holdId };
  }

  /** §4 DELETE /v1/holds/:id: releases an active hold; unknown → 404. */
  releaseHold(u: UserState, holdId: string): { status: number } {
    const h = u.holds.get(holdId);
    if (!h) return { status: 404 };
    if (h.status === 'active') h.status = 'released';
    return { status: 200 };
  }

  /** What the public reads must show for one user now (view.ts). */
  view(u: UserState, alsoDevices: Iterable<string> = []): UserView {
    return viewOf(u, this.now, this.doc, (asset) => this.held(u, asset), alsoDevices);
  }

  /** `tally maintenance decay` at the model's now, over every device. */
  decayAll(): void {
    for (const u of this.users.values()) for (const d of u.devices.values()) decay(d, this.doc, this.now);
  }
}
