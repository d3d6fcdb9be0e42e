/**
 * Runs one sequence of operations against tally and the model side by side: queue operations gather into
 * waves (enqueued together, so tally group-commits them), every other operation is done alone; every job
 * result, hold answer and config apply is compared as it comes, the full state of the run's users at each
 * `check` and at the end. The first difference stops the run with a `Divergence` that says what happened.
 */
import { canonical } from './model/config.ts';
import { nextMidnight } from './model/days.ts';
import { Model, newUser } from './model/model.ts';
import { BASE_TOGGLES, TIMEZONE, configDocument } from './config.ts';
import { userDiffs } from './compare.ts';
import { observe } from './observe.ts';
import { describeOp, type Feature, type Op } from './ops.ts';
import { Planner, type Action, type PlannedJob } from './plan.ts';
import { fitOrder } from './serialize.ts';
import type { Observation, TallySystem } from './system.ts';

/**
 * How long after an instant tally may still be acting on it: the clock is pinned to the instant before each
 * step, and a step (a wave, a request, a read) must end within this. Every time-dependent boundary is kept
 * at least this far from every instant (docs/simulation.md).
 */
export const SLACK_MS = 3 * 60_000;
/** Most jobs of one user in one wave (the orderings tried grow as its factorial). */
const PER_USER = 4;
const WAVE_MAX = 24;
const DAY = 86_400_000;

export class Divergence extends Error {
  constructor(readonly what: string, readonly transcript: string[]) {
    super(`${what}\n--- the last 80 lines of the run's transcript (all of it: --replay the saved sequence with --verbose) ---\n${transcript.slice(-80).join('\n')}`);
    this.name = 'Divergence';
  }
}

/** The run could not keep to the time model (a step took longer than the slack): not tally's fault. */
export class SlowStep extends Error {}

export interface RunOptions {
  exclude: ReadonlySet<Feature>;
  /** Called with each transcript line as it is written (the CLI's --verbose). */
  echo?: (line: string) => void;
}

export interface RunStats {
  ops: number;
  /** Operations by kind: generated, and of those done (not skipped for want of a target or an exclusion). */
  kinds: Partial<Record<Op['k'], { generated: number; done: number }>>;
  jobs: number;
  waves: number;
  checks: number;
  skipped: number;
}

let runs = 0;
const session = Math.random().toString(36).slice(2, 6);

/** Runs `ops` as one run; `stats` (if given) is kept up to date as it goes, so a divergence still counts. */
export async function runOps(sys: TallySystem, ops: Op[], opts: RunOptions, stats: RunStats = emptyStats()): Promise<RunStats> {
  const runId = `s${session}r${++runs}`;
  return new Run(sys, runId, opts, stats).run(ops);
}

export const emptyStats = (): RunStats => ({ ops: 0, kinds: {}, jobs: 0, waves: 0, checks: 0, skipped: 0 });

class Run {
  private readonly model = new Model(SLACK_MS);
  private planner!: Planner;
  private wave: PlannedJob[] = [];
  private readonly transcript: string[] = [];
  /** The first applied result tally gave per `queue|event_id`: a replay must carry it. */
  private readonly originals = new Map<string, Record<string, any>>();
  /** Level-reward ids seen, with the (user, device, level, index) they were derived from: must be injective. */
  private readonly rewardIds = new Map<string, string>();
  private sweptAt = -1;
  private opIndex = -1;

  constructor(
    private readonly sys: TallySystem,
    private readonly runId: string,
    private readonly opts: RunOptions,
    private readonly stats: RunStats,
  ) {}

  private log(line: string): void {
    const stamped = `[${new Date(this.model.now).toISOString()}] ${line}`;
    this.transcript.push(stamped);
    this.opts.echo?.(stamped);
  }

  private diverge(what: string): never {
    throw new Divergence(`DIVERGENCE in run ${this.runId} at op #${this.opIndex}: ${what}`, this.transcript);
  }

  async run(ops: Op[]): Promise<RunStats> {
    await this.begin();
    for (const [i, op] of ops.entries()) {
      this.opIndex = i;
      this.stats.ops++;
      const kind = (this.stats.kinds[op.k] ??= { generated: 0, done: 0 });
      kind.generated++;
      let action = this.planner.plan(op);
      if (action.kind === 'jobs' && !this.fits(action.jobs)) {
        await this.flush();
        action = this.planner.plan(op);
      }
      if (action.kind === 'skip') {
        this.stats.skipped++;
        continue;
      }
      kind.done++;
      if (action.kind === 'jobs') {
        for (const j of action.jobs) this.log(`#${i} queue ${describeOp(op)} → ${j.job.queue} ${JSON.stringify(j.job.payload)}`);
        this.wave.push(...action.jobs);
        if (this.wave.length >= WAVE_MAX) await this.flush();
        continue;
      }
      await this.flush();
      this.log(`#${i} ${describeOp(op)}`);
      await this.step(action);
    }
    this.opIndex = ops.length;
    await this.flush();
    await this.step({ kind: 'sweep' });
    await this.step({ kind: 'check' });
    await this.reconcile();
    return this.stats;
  }

  /** The run starts a day after anything before it, with its own config version in force. */
  private async begin(): Promise<void> {
    this.model.now = this.safeInstant(Math.max(this.sys.timeHigh, Date.now()) + DAY);
    await this.step({ kind: 'config', doc: configDocument(BASE_TOGGLES, this.runId) });
    this.planner = new Planner(this.runId, this.model, this.model.now, this.opts.exclude, this.sys.opts.procs);
    this.log(`run ${this.runId} begins; users ${this.planner.users.join(', ')}`);
  }

  private fits(jobs: PlannedJob[]): boolean {
    const ids = new Set(this.wave.map((j) => j.job.payload.event_id));
    if (jobs.some((j) => ids.has(j.job.payload.event_id))) return false;
    // Affinity results say nothing about the balance their level rewards were granted at: two devices of one
    // user in one wave could reward in either order, unseen. One device per user per wave keeps it decidable.
    const device = (j: PlannedJob) => (j.job.queue === 'affinity-events' ? (j.job.payload.device_id as string) : undefined);
    for (const j of jobs) {
      const d = device(j);
      if (d !== undefined && this.wave.some((w) => w.user === j.user && device(w) !== undefined && device(w) !== d)) return false;
    }
    const count = (u: string) => this.wave.filter((j) => j.user === u).length + jobs.filter((j) => j.user === u).length;
    return jobs.every((j) => count(j.user) <= PER_USER) && this.wave.length + jobs.length <= WAVE_MAX;
  }

  /** Pins tally's clock to the model's instant, does `work`, and checks it ended within the slack. */
  private async pinned<T>(work: () => Promise<T>): Promise<T> {
    // The next run starts after every instant this one used, even if this one ends in a divergence.
    this.sys.timeHigh = Math.max(this.sys.timeHigh, this.model.now + SLACK_MS);
    await this.sys.pin(this.model.now);
    const started = Date.now();
    const out = await work();
    const took = Date.now() - started;
    if (took >= SLACK_MS) throw new SlowStep(`a step took ${took} ms, more than the time model's slack of ${SLACK_MS} ms`);
    return out;
  }

  private async flush(): Promise<void> {
    if (this.wave.length === 0) return;
    const wave = this.wave;
    this.wave = [];
    this.stats.waves++;
    this.stats.jobs += wave.length;
    this.sweptAt = -1;
    const replace = new Set(wave.filter((j) => j.replay).map((j) => j.job.payload.event_id as string));
    const obs = await this.pinned(() => this.sys.wave(wave.map((j) => j.job), replace));
    const users = [...new Set(wave.map((j) => j.user))];
    for (const user of users) {
      const idx = wave.flatMap((j, i) => (j.user === user ? [i] : []));
      const jobs = idx.map((i) => wave[i]!);
      const seen = idx.map((i) => obs[i]!);
      const fit = fitOrder(this.model, user, jobs, seen, this.originals);
      if (!('state' in fit)) {
        const lines = jobs.map((j, k) => `    ${k}: ${j.job.queue} ${JSON.stringify(j.job.payload)} → tally: ${show(seen[k]!)}`);
        this.diverge(
          `no order of user ${user}'s ${jobs.length} concurrent job(s) gives tally's results (${fit.tried} tried)\n` +
            `  jobs (enqueued in this order):\n${lines.join('\n')}\n` +
            `  longest order that fits: [${fit.prefix.join(', ')}]; then job ${fit.index}: ${fit.why}`,
        );
      }
      this.model.users.set(user, fit.state);
      for (const k of fit.order) this.record(jobs[k]!, seen[k]!);
    }
    this.planner.committed(wave);
    this.log(`wave of ${wave.length}: ${wave.map((j, i) => `${j.job.payload.event_id} → ${show(obs[i]!)}`).join(' | ')}`);
  }

  /** Remembers a first applied result (a replay must carry it) and checks level-reward ids stay injective. */
  private record(j: PlannedJob, o: Observation): void {
    if (!o.ok) return;
    const key = `${j.job.queue}|${j.job.payload.event_id}`;
    if (o.result.outcome !== 'noop_duplicate' && !this.originals.has(key)) this.originals.set(key, o.result);
    const perLevel = new Map<number, number>();
    for (const r of (o.result.rewards ?? []) as { level: number; event_id?: string }[]) {
      const index = perLevel.get(r.level) ?? 0;
      perLevel.set(r.level, index + 1);
      if (!r.event_id) continue;
      const from = `${j.user}|${j.job.payload.device_id}|${r.level}|${index}`;
      const before = this.rewardIds.get(r.event_id);
      if (before !== undefined && before !== from) this.diverge(`level-reward id ${r.event_id} derived from both ${before} and ${from} (CONTRACT v2: derived ids are injective)`);
      this.rewardIds.set(r.event_id, from);
    }
  }

  private async step(action: Exclude<Action, { kind: 'jobs' } | { kind: 'skip' }>): Promise<void> {
    switch (action.kind) {
      case 'hold':
        return this.hold(action.user, action.req);
      case 'release': {
        const u = this.model.user(action.user);
        const want = this.model.releaseHold(structuredClone(u), action.holdId);
        const res = await this.pinned(() => this.sys.http('DELETE', `/v1/holds/${action.holdId}`));
        if (res.status !== want.status) this.diverge(`DELETE /v1/holds/${action.holdId}: model ${want.status}, tally ${res.status} ${show(res.body)}`);
        this.model.releaseHold(u, action.holdId);
        this.log(`release ${action.holdId} → ${res.status}`);
        return;
      }
      case 'config': {
        const res = await this.pinned(() => this.sys.http('PUT', '/v1/admin/config', action.doc, true));
        if (res.status !== 200) this.diverge(`PUT /v1/admin/config → ${res.status} ${show(res.body)}`);
        const changed = this.model.applyConfig(action.doc);
        if (res.body.changed !== changed) this.diverge(`config apply: model changed=${changed}, tally ${show(res.body)}`);
        this.log(`config applied (changed: ${changed}) ${canonical(action.doc).slice(0, 300)}`);
        // Usage from now on is priced by this version: the next instant is past its applied_at's window.
        this.model.now = this.safeInstant(this.model.now + SLACK_MS + 1000);
        return;
      }
      case 'advance':
        this.model.now = this.safeInstant(this.model.now + action.ms);
        this.log(`time is now ${new Date(this.model.now).toISOString()}`);
        return;
      case 'decay': {
        const res = await this.pinned(() => this.sys.http('POST', '/v1/admin/maintenance/decay', undefined, true));
        if (res.status !== 200) this.diverge(`decay → ${res.status} ${show(res.body)}`);
        this.model.decayAll();
        this.log(`decay: ${show(res.body)}`);
        return;
      }
      case 'sweep': {
        const res = await this.pinned(() => this.sys.http('POST', '/v1/admin/maintenance/expire', undefined, true));
        if (res.status !== 200) this.diverge(`expire sweep → ${res.status} ${show(res.body)}`);
        this.sweptAt = this.model.now;
        this.log(`expire sweep: ${show(res.body)}`);
        return;
      }
      case 'check':
        return this.check();
    }
  }

  private async hold(user: string, req: Record<string, unknown>): Promise<void> {
    const u = this.model.user(user);
    const want = this.model.placeHold(u, req, undefined);
    const res = await this.pinned(() => this.sys.http('POST', '/v1/holds', req));
    const got = { status: res.status, amount: res.body?.amount, holdId: res.body?.hold_id };
    const same = want.status === got.status && (want.status !== 201 || (want.amount === got.amount && (want.holdId === undefined || want.holdId === got.holdId)));
    if (!same) this.diverge(`POST /v1/holds ${show(req)}: model ${show(want)}, tally ${res.status} ${show(res.body)}`);
    if (res.status === 201) {
      const at = Date.parse(res.body.expires_at);
      const due = want.holdId === undefined ? this.model.now + (req.ttl_seconds as number) * 1000 : this.model.user(user).holds.get(want.holdId)!.expiresAt;
      if (!(at >= due && at < due + SLACK_MS)) this.diverge(`hold ${res.body.hold_id} expires_at ${res.body.expires_at}, model ${new Date(due).toISOString()} (+ up to the slack)`);
      if (want.holdId === undefined) {
        this.model.placeHold(u, req, res.body.hold_id);
        this.planner.holds.push({ user, holdId: res.body.hold_id, asset: req.asset as string, sourceType: req.source_type as string, amount: res.body.amount, req, configs: this.model.versions.length });
      }
    }
    this.log(`hold ${show(req)} → ${res.status} ${show(res.body)}`);
  }

  /** Compares every user of the run with the model, through the public reads (and SQL where there are none). */
  private async check(): Promise<void> {
    this.stats.checks++;
    const users = this.planner.users;
    const seen = await this.pinned(() =>
      observe(this.sys, users, {
        assets: (u) => [...(this.model.users.get(u)?.accounts.keys() ?? [])],
        devices: (u) => [...(this.model.users.get(u)?.devices.keys() ?? [])],
      }),
    );
    const diffs: string[] = [];
    for (const user of users) {
      const t = seen[user]!;
      const view = this.model.view(this.model.users.get(user) ?? newUser(), Object.keys(t.devices));
      for (const d of userDiffs(view, t, { swept: this.sweptAt === this.model.now, slack: SLACK_MS })) diffs.push(`${user} ${d}`);
    }
    if (diffs.length > 0) this.diverge(`state check:\n  ${diffs.join('\n  ')}`);
    this.log(`check: ${users.length} users agree with the model`);
  }

  private async reconcile(): Promise<void> {
    const res = await this.pinned(() => this.sys.http('POST', '/v1/admin/maintenance/reconcile', undefined, true));
    const mine = (res.body?.violations ?? []).filter((v: { user_id?: string }) => !v.user_id || v.user_id.startsWith(`${this.runId}.`));
    if (res.status !== 200 || mine.length > 0) this.diverge(`reconcile → ${res.status} ${show(mine.length > 0 ? mine : res.body)}`);
  }

  /**
   * The instant nearest `t` (not earlier) at which no decision depends on how long tally takes within the
   * slack: not in the slack before a batch or hold expiry (or within a default expiry's own uncertainty),
   * nor in the slack before a midnight of the timezone (decay's "today").
   */
  private safeInstant(t: number): number {
    for (let moved = true, rounds = 0; moved && rounds < 10_000; rounds++) {
      moved = false;
      const bump = (boundary: number, fuzz: number) => {
        if (t > boundary - SLACK_MS && t < boundary + fuzz) {
          t = boundary + fuzz;
          moved = true;
        }
      };
      for (const u of this.model.users.values()) {
        for (const a of u.accounts.values()) for (const b of a.batches) if (b.expiresAt !== null) bump(b.expiresAt, b.fuzzy ? SLACK_MS : 0);
        for (const h of u.holds.values()) bump(h.expiresAt, SLACK_MS);
      }
      const midnight = nextMidnight(t, TIMEZONE);
      if (midnight - t < SLACK_MS) {
        t = midnight;
        moved = true;
      }
    }
    return t;
  }
}

function show(o: unknown): string {
  if (o && typeof o === 'object' && 'ok' in o) {
    const x = o as Observation;
    return x.ok ? JSON.stringify(x.result) : `fails ${x.reason.slice(0, 200)}`;
  }
  return JSON.stringify(o);
}
