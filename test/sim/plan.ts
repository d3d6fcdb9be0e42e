/**
 * Turns abstract operations into concrete jobs and requests, against the model's committed state: ids,
 * payloads, which earlier charge a refund names, and — the time model — instants and expiries chosen so that
 * no decision depends on how long tally takes to act (see docs/simulation.md, "How time is driven").
 */
import { configDocument, type ConfigToggles } from './config.ts';
import type { ConfigDoc } from './model/config.ts';
import type { Job, Model } from './model/model.ts';
import type { ChargeKind, Feature, HoldKind, Late, Op, RefundPart } from './ops.ts';

export interface PlannedJob {
  user: string;
  job: Job;
  /** A refund sent in the same wave as its charge: no ordering may apply it before that charge. */
  after?: string;
  /** The event id was sent before (a replay or conflict): its old BullMQ job is removed first. */
  replay: boolean;
  /** How many config versions had been applied when it was sent. */
  configs: number;
}

export type Action =
  | { kind: 'jobs'; jobs: PlannedJob[] }
  | { kind: 'hold'; user: string; req: Record<string, unknown> }
  | { kind: 'release'; user: string; holdId: string }
  | { kind: 'config'; doc: ConfigDoc }
  | { kind: 'advance'; ms: number }
  | { kind: 'decay' }
  | { kind: 'sweep' }
  | { kind: 'check' }
  | { kind: 'skip'; why: string };

export interface HoldRef {
  user: string;
  holdId: string;
  asset: string;
  sourceType: string;
  amount: number;
  req: Record<string, unknown>;
  /** Config versions applied when it was placed. */
  configs: number;
}

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const USERS = ['u', 'u-x', 'v', 'w.1', 'z'];
/** With `collide`, user `u` device `x-d` and user `u-x` device `d` derive the same naive level-reward id. */
const DEVICES = { collide: ['d', 'x-d'], apart: ['d', 'e'] };

export class Planner {
  private n = 0;
  /** Every job of earlier waves, in order (replays and conflicts pick among them). */
  readonly sent: PlannedJob[] = [];
  /** Charges (and settles) of earlier waves, for refunds. */
  readonly charges: { user: string; eventId: string }[] = [];
  readonly holds: HoldRef[] = [];
  /** Expiries of batches the wave being gathered will create, per `user|asset`. */
  private pendingExpiries = new Map<string, { at: number; fuzzy: boolean }[]>();

  constructor(
    readonly runId: string,
    readonly model: Model,
    /** The first instant any occurred_at may name: after the run's first config is in force. */
    readonly runStart: number,
    readonly exclude: ReadonlySet<Feature>,
    /** Worker processes: with two, any refund in its charge's wave may be taken first, by the other process. */
    readonly procs: 1 | 2 = 1,
  ) {}

  userName(i: number): string {
    return `${this.runId}.${USERS[i % USERS.length]}`;
  }

  get users(): string[] {
    return USERS.map((_, i) => this.userName(i));
  }

  deviceName(i: number): string {
    return (this.exclude.has('collide') ? DEVICES.apart : DEVICES.collide)[i % 2]!;
  }

  /** The jobs of a wave were applied: they become references for later operations. */
  committed(jobs: PlannedJob[]): void {
    for (const j of jobs) {
      this.sent.push(j);
      if (j.job.payload.type === 'charge' && !j.replay) this.charges.push({ user: j.user, eventId: j.job.payload.event_id });
    }
    this.pendingExpiries.clear();
  }

  private id(kind: string): string {
    return `${this.runId}.${kind}${++this.n}`;
  }

  private job(user: string, queue: Job['queue'], payload: Record<string, unknown>): PlannedJob {
    return { user, job: { queue, payload, timestamp: this.model.now }, replay: false, configs: this.model.versions.length };
  }

  configDoc(t: ConfigToggles): ConfigDoc {
    return configDocument(t, this.runId);
  }

  /** An earlier job to send again; with `config-replay` excluded, only one sent since the latest config change. */
  private earlier(ref: number): PlannedJob | undefined {
    const pool = this.exclude.has('config-replay') ? this.sent.filter((j) => j.configs === this.model.versions.length) : this.sent;
    return pool[ref % Math.max(1, pool.length)];
  }

  plan(op: Op): Action {
    switch (op.k) {
      case 'grant':
        return { kind: 'jobs', jobs: [this.grant(op)] };
      case 'charge':
        return { kind: 'jobs', jobs: [this.charge(this.userName(op.u), op.what, op.policy, op.n, op.late)] };
      case 'hold':
        return { kind: 'hold', user: this.userName(op.u), req: this.holdRequest(this.userName(op.u), op.what, op.n, op.ttl) };
      case 'holdReplay': {
        // With config-replay excluded, only holds placed since the latest config change (tally prices a replayed
        // hold request again before it looks up the hold: a replay after a pricing change answers 422).
        const pool = this.exclude.has('config-replay') ? this.holds.filter((x) => x.configs === this.model.versions.length) : this.holds;
        const h = pool[op.ref % Math.max(1, pool.length)];
        if (!h) return { kind: 'skip', why: 'no hold yet' };
        return { kind: 'hold', user: h.user, req: op.alter ? { ...h.req, ttl_seconds: (h.req.ttl_seconds as number) + 60 } : h.req };
      }
      case 'settle':
        return this.settle(op);
      case 'release': {
        const h = this.holds[op.ref % Math.max(1, this.holds.length)];
        return h ? { kind: 'release', user: h.user, holdId: h.holdId } : { kind: 'skip', why: 'no hold yet' };
      }
      case 'refund':
        return this.refund(op.ref, op.part);
      case 'chargeRefund': {
        if (op.early && this.exclude.has('early-refund')) return { kind: 'skip', why: 'early refunds excluded' };
        const user = this.userName(op.u);
        // A charge that fails is never applied: its refund then waits and fails unknown_charge (v2).
        // (With early refunds excluded, a charge that cannot fail: an explicit amount on an asset always configured.)
        const what = this.exclude.has('early-refund') ? 'amount-points' : op.what;
        const charge = this.charge(user, what, op.policy, op.n, 0);
        if (this.exclude.has('early-refund') && this.procs === 2) return { kind: 'jobs', jobs: [charge] };
        const refund = this.job(user, 'charges', { type: 'refund', event_id: this.id('rf'), charge_event_id: charge.job.payload.event_id, ...this.blindAmount(op.part) });
        refund.after = charge.job.payload.event_id as string;
        return { kind: 'jobs', jobs: op.early ? [refund, charge] : [charge, refund] };
      }
      case 'refundUnknown':
        if (this.exclude.has('early-refund')) return { kind: 'skip', why: 'refunds of unknown charges excluded' };
        return { kind: 'jobs', jobs: [this.job(this.userName(op.u), 'charges', { type: 'refund', event_id: this.id('rf'), charge_event_id: this.id('never') })] };
      case 'reward':
        return { kind: 'jobs', jobs: [this.reward(op)] };
      case 'affinity': {
        const user = this.userName(op.u);
        const payload: Record<string, unknown> = {
          type: 'affinity.event', event_id: this.id('a'), user_id: user, device_id: this.deviceName(op.dev), rule_key: op.rule, source: 'app', occurred_at: this.iso(this.at(op.late)),
        };
        if (op.rule === 'gift') payload.metadata = { units: op.units };
        return { kind: 'jobs', jobs: [this.job(user, 'affinity-events', payload)] };
      }
      case 'adjust': {
        const user = this.userName(op.u);
        return { kind: 'jobs', jobs: [this.job(user, 'affinity-events', { type: 'affinity.adjust', event_id: this.id('adj'), user_id: user, device_id: this.deviceName(op.dev), delta: op.delta, operator_id: 'sim', reason: 'simulated adjust' })] };
      }
      case 'replay': {
        const prior = this.earlier(op.ref);
        if (!prior) return { kind: 'skip', why: 'nothing to replay' };
        return { kind: 'jobs', jobs: [{ ...prior, job: { ...prior.job, timestamp: this.model.now }, replay: true, configs: this.model.versions.length }] };
      }
      case 'conflict': {
        const prior = this.earlier(op.ref);
        if (!prior) return { kind: 'skip', why: 'nothing to replay' };
        return { kind: 'jobs', jobs: [{ ...prior, job: { ...prior.job, payload: altered(prior.job.payload), timestamp: this.model.now }, replay: true, configs: this.model.versions.length }] };
      }
      case 'config':
        return { kind: 'config', doc: this.configDoc(op.t) };
      case 'advance':
        return { kind: 'advance', ms: op.ms };
      case 'decay':
        return this.exclude.has('decay') ? { kind: 'skip', why: 'decay excluded' } : { kind: 'decay' };
      case 'sweep':
        return { kind: 'sweep' };
      case 'check':
        return { kind: 'check' };
    }
  }

  private iso(ms: number): string {
    return new Date(ms).toISOString();
  }

  /** When an event happened: `late` minutes before now (never before the run began), or ahead of now. */
  private at(late: Late): number {
    const now = this.model.now;
    if (late === -4) return now + 4 * MIN; // within the 5 minutes tally accepts
    if (late < 0) return now + this.model.slack + 6 * MIN; // beyond them, however late tally acts
    return Math.max(this.runStart, now - late * MIN);
  }

  /**
   * A priced usage's occurred_at, kept out of [applied_at − 1 ms, applied_at + slack] of every config version:
   * tally's applied_at lies somewhere in that window, so a usage inside it could be priced by either version.
   */
  private pricedAt(late: Late): number {
    let at = this.at(late);
    for (const v of this.model.versions) if (at >= v.appliedAt - 1 && at <= v.appliedAt + this.model.slack) at = v.appliedAt + this.model.slack + 1;
    return at;
  }

  private grant(op: Extract<Op, { k: 'grant' }>): PlannedJob {
    const user = this.userName(op.u);
    const payload: Record<string, unknown> = { type: 'grant', event_id: this.id('g'), user_id: user, asset: op.asset, amount: op.amount, source: 'gift' };
    const now = this.model.now;
    const slack = this.model.slack;
    const taken = this.expiriesOf(user, op.asset);
    // Burn order between batches must not depend on tally's clock: no two expiries within the slack of
    // each other when one of them was counted from that clock (a default expiry).
    const clashes = (at: number, fuzzy: boolean) => taken.some((t) => (t.fuzzy || fuzzy) && Math.abs(t.at - at) <= slack + 1);
    let expiry: { at: number | null; fuzzy: boolean } | undefined;
    let kind = op.expiry;
    if (kind === 'past' && this.exclude.has('past')) kind = 'near';
    if (kind === 'default') {
      const days = this.model.doc.assets[op.asset]?.default_expiry_days ?? null;
      if (days === null) expiry = { at: null, fuzzy: false };
      else if (!clashes(now + days * DAY, true)) expiry = { at: now + days * DAY, fuzzy: true };
      else kind = 'far';
      if (expiry) {
        this.taken(user, op.asset, expiry);
        return this.job(user, 'grants', payload);
      }
    }
    let at: number | null;
    switch (kind) {
      case 'none':
        at = null;
        break;
      case 'past':
        at = now - op.hours * HOUR - 1;
        break;
      case 'near':
        at = now + op.hours * HOUR + 30 * MIN;
        break;
      default:
        at = now + (op.hours + 2) * DAY + 7 * MIN;
    }
    if (at !== null) while (clashes(at, false)) at += slack + 2;
    payload.expires_at = at === null ? null : this.iso(at);
    this.taken(user, op.asset, { at, fuzzy: false });
    return this.job(user, 'grants', payload);
  }

  private expiriesOf(user: string, asset: string): { at: number; fuzzy: boolean }[] {
    const batches = this.model.users.get(user)?.accounts.get(asset)?.batches ?? [];
    return [
      ...batches.filter((b) => b.expiresAt !== null).map((b) => ({ at: b.expiresAt!, fuzzy: b.fuzzy })),
      ...(this.pendingExpiries.get(`${user}|${asset}`) ?? []),
    ];
  }

  private taken(user: string, asset: string, e: { at: number | null; fuzzy: boolean }): void {
    if (e.at === null) return;
    const key = `${user}|${asset}`;
    this.pendingExpiries.set(key, [...(this.pendingExpiries.get(key) ?? []), { at: e.at, fuzzy: e.fuzzy }]);
  }

  private charge(user: string, what: ChargeKind, policy: string, n: number, late: Late): PlannedJob {
    const event = this.id('c');
    const base = { type: 'charge', event_id: event, user_id: user, source_id: event, policy, occurred_at: this.iso(this.pricedAt(late)) };
    const tokens = { input_tokens: n * 37, output_tokens: n * 11 };
    const spec: Record<ChargeKind, Record<string, unknown>> = {
      'amount-points': { asset: 'points', source_type: 'script', amount: n },
      'amount-credits': { asset: 'credits', source_type: 'llm', amount: n },
      'amount-gems': { asset: 'gems', source_type: 'shop', amount: n },
      script: { asset: 'points', source_type: 'script' },
      tts: { asset: 'points', source_type: 'tts', usage: { seconds: n * 0.7 } },
      video: { asset: 'points', source_type: 'video', usage: { seconds: n / 4 } },
      caption: { asset: 'points', source_type: 'caption', usage: { seconds: n } },
      llm: { asset: 'credits', source_type: 'llm', usage: { model: 'gpt-4o-mini', ...tokens } },
      'llm-other': { asset: 'credits', source_type: 'llm', usage: { model: 'o-other', ...tokens } },
      unpriced: { asset: 'points', source_type: 'stt', usage: { seconds: n } },
    };
    return this.job(user, 'charges', { ...base, ...spec[what] });
  }

  private holdRequest(user: string, what: HoldKind, n: number, ttlMinutes: number): Record<string, unknown> {
    const spec: Record<HoldKind, Record<string, unknown>> = {
      'amount-points': { asset: 'points', source_type: 'script', amount: n },
      'amount-credits': { asset: 'credits', source_type: 'llm', amount: n },
      'tts-chars': { asset: 'points', source_type: 'tts', usage_estimate: { char_count: n * 3 } },
      'video-input': { asset: 'points', source_type: 'video', usage_estimate: { input_seconds: n } },
      script: { asset: 'points', source_type: 'script' },
      llm: { asset: 'credits', source_type: 'llm', usage_estimate: { model: 'gpt-4o-mini', input_tokens: n * 20, output_tokens: n * 40 } },
      caption: { asset: 'points', source_type: 'caption', usage_estimate: {} },
      'no-estimate': { asset: 'points', source_type: 'tts', usage_estimate: {} },
    };
    return { event_id: this.id('h'), user_id: user, ...spec[what], ttl_seconds: ttlMinutes * 60 };
  }

  private settle(op: Extract<Op, { k: 'settle' }>): Action {
    const h = this.holds[op.ref % Math.max(1, this.holds.length)];
    if (!h) return { kind: 'skip', why: 'no hold yet' };
    const event = this.id('s');
    const payload: Record<string, unknown> = {
      type: 'charge', event_id: event, user_id: h.user, asset: h.asset, source_type: h.sourceType, source_id: event, hold_id: h.holdId, occurred_at: this.iso(this.pricedAt(op.late)),
    };
    if (op.how === 'lower') payload.amount = Math.max(1, h.amount - op.n);
    if (op.how === 'higher') payload.amount = h.amount + op.n;
    if (op.how === 'usage') payload.usage = h.sourceType === 'llm' ? { model: 'gpt-4o-mini', input_tokens: op.n * 50, output_tokens: op.n * 70 } : { seconds: op.n * 1.3 };
    return { kind: 'jobs', jobs: [this.job(h.user, 'charges', payload)] };
  }

  /** A refund's amount for a charge the model cannot see yet (same wave): whole, one, or surely too much. */
  private blindAmount(part: RefundPart): Record<string, number> {
    return part === 'full' ? {} : part === 'over' ? { amount: 1_000_000 } : { amount: 1 };
  }

  private refund(ref: number, part: RefundPart): Action {
    const c = this.charges[ref % Math.max(1, this.charges.length)];
    if (!c) return { kind: 'skip', why: 'no charge yet' };
    const record = this.model.users.get(c.user)?.charges.get(c.eventId);
    // A debt part still unpaid may be paid by a grant in the same wave before the refund is applied.
    if (this.exclude.has('debt-refund') && record && (record.unpaid > 0n || record.paidBy.some((p) => p.left > 0n))) return { kind: 'skip', why: 'refunds of debt parts excluded' };
    // A charge that was never applied (it failed): v2 answers unknown_charge, after waiting for it.
    if (this.exclude.has('early-refund') && !record) return { kind: 'skip', why: 'refunds of unapplied charges excluded' };
    const left = record ? Number(record.amount - record.refunded) : 1;
    const amount = part === 'full' ? {} : part === 'half' ? { amount: Math.max(1, Math.floor(left / 2)) } : part === 'one' ? { amount: 1 } : { amount: left + 1 };
    return { kind: 'jobs', jobs: [this.job(c.user, 'charges', { type: 'refund', event_id: this.id('rf'), charge_event_id: c.eventId, ...amount })] };
  }

  private reward(op: Extract<Op, { k: 'reward' }>): PlannedJob {
    const user = this.userName(op.u);
    const type = { liked: 'forum.post.liked', imported: 'forum.post.imported', unknown: 'forum.post.shared' }[op.type];
    const event = this.id('rw');
    const payload: Record<string, unknown> = { type: 'reward.event', event_id: event, event_type: type, receiver_user_id: user, source_ref_id: event, occurred_at: this.iso(this.at(op.late)) };
    const version = this.exclude.has('empty-version') && (op.version === '' || op.version === 'none') ? '1' : op.version;
    if (version !== 'none') payload.event_version = version;
    return this.job(user, 'grants', payload);
  }
}

/** The same event id with another payload (CONTRACT §3: idempotency_conflict once the first was decided). */
function altered(p: Record<string, any>): Record<string, any> {
  switch (p.type) {
    case 'grant':
      return { ...p, amount: p.amount + 1 };
    case 'charge':
      return { ...p, description: 'altered' };
    case 'refund':
      return { ...p, reason: 'altered' };
    case 'reward.event':
      return { ...p, source_ref_id: `${p.source_ref_id}x` };
    case 'affinity.event':
      return { ...p, source: 'other' };
    default:
      return { ...p, delta: p.delta + 1 };
  }
}
