import { Queue, QueueEvents, type Job, type JobsOptions } from 'bullmq';
import { createRedis, hasHashTag, parseClusterUrl, type RedisClient } from '../redis.ts';
import type { z } from 'zod';
import { canonicalJson, sha256 } from '../config/store.ts';
import { BATCH_TYPE, MAX_BATCH_EVENTS, type BatchMemberResult } from '../queues/batch.ts';
import { chargeSchema, chargesJobSchema, refundSchema, type ChargePayload, type RefundPayload } from '../queues/charges/schema.ts';
import { DEFAULT_JOB_OPTIONS, QUEUE, describeIssues } from '../queues/common.ts';
import { grantSchema, grantsJobSchema, rewardEventSchema, type GrantPayload, type RewardEventPayload } from '../queues/grants/schema.ts';
import {
  affinityAdjustSchema,
  affinityEventSchema,
  affinityJobSchema,
  type AffinityAdjustPayload,
  type AffinityEventPayload,
} from '../queues/affinity-events/schema.ts';
import { bullmqTelemetry } from '../telemetry/bullmq.ts';

/**
 * The typed SDK other Node services use to send tally events. Every job gets `jobId = event_id` and the
 * job name `type`; payloads are validated here first, so a bad event fails in the caller, not later.
 *
 *   const tally = new TallyProducer({ redis: 'redis://127.0.0.1:6379' });
 *   await tally.grant({ event_id: 'order-42', user_id: 'u1', asset: 'credits', amount: 1000, source: 'purchase' });
 *   const result = await tally.charge({ ... }, { wait: true }); // { outcome: 'applied', ... }
 *   const jobs = await tally.chargeBulk(charges);             // batch jobs of ≤ 1000 events each
 *   const results = await tally.eventResults('charges', jobs); // one ApplyResult | {failed, reason} per event
 */
export interface ProducerOptions {
  /** A Redis URL (several nodes: a cluster) or an ioredis client (the SDK does not close a client it was given). */
  redis: string | RedisClient;
  /** BullMQ key prefix, TALLY_PREFIX on the tally side. */
  prefix?: string;
}

export class PayloadError extends Error {
  constructor(readonly code: 'invalid_payload', detail: string) {
    super(`${code}: ${detail}`);
    this.name = 'PayloadError';
  }
}

type Without<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;
export type GrantInput = Without<GrantPayload, 'type'>;
export type ChargeInput = Without<ChargePayload, 'type'>;
export type RefundInput = Without<RefundPayload, 'type'>;
export type RewardEventInput = Without<RewardEventPayload, 'type'>;
export type AffinityEventInput = Without<AffinityEventPayload, 'type'>;
export type AffinityAdjustInput = Without<AffinityAdjustPayload, 'type'>;

export interface SendOptions {
  /** Wait for the job to be applied and return its result (ApplyResult) instead of the job. */
  wait?: boolean;
  timeoutMs?: number;
  jobOptions?: Omit<JobsOptions, 'jobId'>;
}

export interface BulkOptions {
  /**
   * Default true: batch jobs (`{type:"batch", events}`, CONTRACT v2 §3) of at most `batchSize` events each, one job
   * per chunk, chunks in order (so each user's events keep their order). false: one job per event, jobId = event_id.
   */
  batch?: boolean;
  /** Most events per batch job: 1–1000, default 1000. */
  batchSize?: number;
  jobOptions?: Omit<JobsOptions, 'jobId'>;
}

/** Per event: its ApplyResult, or why it failed (`failed`: the reason's stable code, or `timeout`). */
export type EventResult = BatchMemberResult;

export class TallyProducer {
  private readonly redis: RedisClient;
  private readonly ownsRedis: boolean;
  private readonly prefix: string;
  private readonly queues = new Map<string, Queue>();
  private readonly events = new Map<string, QueueEvents>();
  /** result() waits in progress: close() ends them, so no timer outlives the producer. */
  private readonly waits = new Set<(err: Error) => void>();

  constructor(opts: ProducerOptions) {
    this.prefix = opts.prefix ?? 'tally';
    if (typeof opts.redis === 'string' && parseClusterUrl(opts.redis) && !hasHashTag(this.prefix)) {
      throw new Error(`on a Redis Cluster the prefix needs a hash tag, e.g. "{${this.prefix}}" (got "${this.prefix}")`);
    }
    this.ownsRedis = typeof opts.redis === 'string';
    this.redis = typeof opts.redis === 'string' ? createRedis(opts.redis) : opts.redis;
  }

  queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.redis, prefix: this.prefix, defaultJobOptions: DEFAULT_JOB_OPTIONS, telemetry: bullmqTelemetry() });
      this.queues.set(name, q);
    }
    return q;
  }

  grant(p: GrantInput, o?: SendOptions) {
    return this.send(QUEUE.grants, grantSchema, { ...p, type: 'grant' }, o);
  }
  grantBulk(ps: GrantInput[], o?: BulkOptions) {
    return this.sendBulk(QUEUE.grants, grantSchema, ps.map((p) => ({ ...p, type: 'grant' })), o);
  }
  rewardEvent(p: RewardEventInput, o?: SendOptions) {
    return this.send(QUEUE.grants, rewardEventSchema, { ...p, type: 'reward.event' }, o);
  }
  charge(p: ChargeInput, o?: SendOptions) {
    return this.send(QUEUE.charges, chargeSchema, { ...p, type: 'charge' }, o);
  }
  chargeBulk(ps: ChargeInput[], o?: BulkOptions) {
    return this.sendBulk(QUEUE.charges, chargeSchema, ps.map((p) => ({ ...p, type: 'charge' })), o);
  }
  refund(p: RefundInput, o?: SendOptions) {
    return this.send(QUEUE.charges, refundSchema, { ...p, type: 'refund' }, o);
  }
  affinityEvent(p: AffinityEventInput, o?: SendOptions) {
    return this.send(QUEUE.affinityEvents, affinityEventSchema, { ...p, type: 'affinity.event' }, o);
  }
  affinityEventBulk(ps: AffinityEventInput[], o?: BulkOptions) {
    return this.sendBulk(QUEUE.affinityEvents, affinityEventSchema, ps.map((p) => ({ ...p, type: 'affinity.event' })), o);
  }
  /** Payloads of any of the queue's types, each with its `type` (e.g. charges and refunds mixed), in order. */
  bulk(queue: string, payloads: ({ type: string } & Record<string, unknown>)[], o?: BulkOptions) {
    const schema = QUEUE_SCHEMAS[queue];
    if (!schema) throw new Error(`not an event queue: ${queue}`);
    return this.sendBulk(queue, schema, payloads, o);
  }
  affinityAdjust(p: AffinityAdjustInput, o?: SendOptions) {
    return this.send(QUEUE.affinityEvents, affinityAdjustSchema, { ...p, type: 'affinity.adjust' }, o);
  }

  /** Validates and enqueues one payload on `queue`; with `wait`, resolves to the job's ApplyResult. */
  async send<S extends z.ZodType>(queue: string, schema: S, payload: unknown, o: SendOptions = {}): Promise<unknown> {
    const data = validate(schema, payload);
    if (o.wait) await this.queueEvents(queue); // listening before the add: a fast worker cannot finish unseen
    const [job] = await this.addFresh(queue, [{ name: data.type, data, opts: { ...o.jobOptions, jobId: data.event_id } }]);
    return o.wait ? this.result(queue, job!, o.timeoutMs) : job!;
  }

  /**
   * `addBulk`, except that a *finished* job of the same id is replaced, so that PostgreSQL decides the resend (CONTRACT
   * §3: "a replay returns noop_duplicate"): a failed job (a corrected payload after `invalid_payload` must apply), a
   * job completed with another payload (an `idempotency_conflict`, not the old job's result), and one completed with
   * the same payload (`noop_duplicate` with the original result, not the old job's `applied` a second time). BullMQ
   * silently ignores an add whose jobId still exists (completed jobs are kept 24 h, failed ones for inspection), so
   * without this a corrected resend never applied and every resend was answered as the first. A job still waiting
   * or running is left alone. The first failure stays in `dead_letters`. One round trip to look, one per replaced job.
   */
  async addFresh(queue: string, jobs: { name: string; data: unknown; opts: JobsOptions & { jobId: string } }[]): Promise<Job[]> {
    const q = this.queue(queue);
    const look = this.redis.pipeline(); // the queue's own connection (same prefix, so one slot on a Cluster)
    for (const j of jobs) look.zscore(q.toKey('completed'), j.opts.jobId).zscore(q.toKey('failed'), j.opts.jobId);
    const seen = (await look.exec()) ?? [];
    const stale = new Set<string>();
    jobs.forEach((j, i) => {
      if (seen[2 * i]?.[1] != null || seen[2 * i + 1]?.[1] != null) stale.add(j.opts.jobId);
    });
    // remove() refuses a job that is locked (taken again meanwhile): then the add is ignored, as for any live job.
    await Promise.all([...stale].map((id) => q.remove(id).catch(() => 0)));
    if (jobs.length === 1) return [await q.add(jobs[0]!.name, jobs[0]!.data, jobs[0]!.opts)]; // one add: its own trace span
    return q.addBulk(jobs);
  }

  /**
   * Validates every payload (one bad one throws PayloadError and nothing is enqueued), then enqueues them in one
   * `addBulk`: as batch jobs (default) or one job per event. A batch job's id is derived from its events
   * (`batch-<sha256 of their canonical JSON>`): the same chunk sent again is the same job id; a finished one is
   * replaced and decided again (addFresh), each event then answering noop_duplicate.
   */
  async sendBulk<S extends z.ZodType>(queue: string, schema: S, payloads: unknown[], o: BulkOptions = {}): Promise<Job[]> {
    const data = payloads.map((p) => validate(schema, p));
    if (o.batch === false) return this.addFresh(queue, data.map((d) => ({ name: d.type, data: d, opts: { ...o.jobOptions, jobId: d.event_id } })));
    const size = o.batchSize ?? MAX_BATCH_EVENTS;
    if (!Number.isInteger(size) || size < 1 || size > MAX_BATCH_EVENTS) throw new RangeError(`batchSize must be 1–${MAX_BATCH_EVENTS} (got ${size})`);
    const chunks: (typeof data)[] = [];
    for (let i = 0; i < data.length; i += size) chunks.push(data.slice(i, i + size));
    return this.addFresh(queue, chunks.map((events) => ({ name: BATCH_TYPE, data: { type: BATCH_TYPE, events }, opts: { ...o.jobOptions, jobId: batchJobId(events) } })));
  }

  /**
   * Waits for the jobs `sendBulk` (or any producer) added and answers one result per event, in order: a batch job's
   * per-event results spread in place, a single job's ApplyResult; a failed job as `{failed, reason}` (for a batch
   * failing whole, once per event), a job not finished within `timeoutMs` as `{failed:"timeout"}` (it stays queued).
   */
  async eventResults(queue: string, jobs: Job[], timeoutMs = 30_000): Promise<EventResult[]> {
    const each = await Promise.all(jobs.map((job) => this.eventResultsOf(queue, job, timeoutMs)));
    return each.flat();
  }

  private async eventResultsOf(queue: string, job: Job, timeoutMs: number): Promise<EventResult[]> {
    const events = (job.data as { type?: unknown; events?: unknown } | undefined)?.type === BATCH_TYPE ? (job.data as { events: unknown[] }).events.length : 1;
    try {
      const r = (await this.result(queue, job, timeoutMs)) as { outcome: string; results?: EventResult[] };
      return r.outcome === BATCH_TYPE && Array.isArray(r.results) ? r.results : [r];
    } catch (err) {
      const reason = (err as Error).message ?? String(err);
      const failed: EventResult = /^timed out after/.test(reason)
        ? { failed: 'timeout', reason: 'not applied in time; it stays queued and will be applied' }
        : { failed: /^([a-z_]+):/.exec(reason)?.[1] ?? 'failed', reason };
      return new Array<EventResult>(events).fill(failed);
    }
  }

  /** Waits for a job to finish: its ApplyResult, or an error carrying its failure reason. */
  async result(queue: string, job: Job, timeoutMs = 30_000): Promise<unknown> {
    // Per-job events (`completed:<id>`) are emitted by QueueEvents but absent from its typed listener map.
    const events = (await this.queueEvents(queue)) as unknown as NodeJS.EventEmitter;
    const id = job.id!;
    // Events first, a slow poll of the job's state as a backstop: a QueueEvents connection reports "ready" before
    // its first XREAD is issued, so a job finishing in that gap (BullMQ's own waitUntilFinished checks only once)
    // would otherwise never be seen.
    return new Promise((resolve, reject) => {
      let done = false;
      let poll: NodeJS.Timeout | undefined;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        this.waits.delete(abort);
        clearTimeout(poll);
        clearTimeout(deadline);
        events.off(`completed:${id}`, onCompleted);
        events.off(`failed:${id}`, onFailed);
        fn();
      };
      const onCompleted = (a: { returnvalue: unknown }) => finish(() => resolve(a.returnvalue));
      const onFailed = (a: { failedReason: string }) => finish(() => reject(new Error(a.failedReason)));
      const abort = (err: Error) => finish(() => reject(err));
      this.waits.add(abort);
      events.on(`completed:${id}`, onCompleted);
      events.on(`failed:${id}`, onFailed);
      const deadline = setTimeout(
        () => finish(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for job ${id} on ${queue}`))),
        timeoutMs,
      );
      let every = 100;
      const check = async () => {
        try {
          // State first, then the job: a job read before it finished carries no return value yet, even if its
          // state (read a moment later) says completed.
          const state = await this.queue(queue).getJobState(id);
          if (state === 'completed' || state === 'failed') {
            const current = await this.queue(queue).getJob(id);
            if (current && state === 'completed') return finish(() => resolve(current.returnvalue));
            if (current) return finish(() => reject(new Error(current.failedReason)));
          }
        } catch {
          // Redis hiccup: the next poll or the event will tell.
        }
        if (!done) poll = setTimeout(check, (every = Math.min(every * 2, 1000)));
      };
      poll = setTimeout(check, every);
    });
  }

  private async queueEvents(queue: string): Promise<QueueEvents> {
    let ev = this.events.get(queue);
    if (!ev) {
      // BullMQ gives a QueueEvents its own duplicate of this client (it blocks on XREAD) and closes it with it.
      ev = new QueueEvents(queue, { connection: this.redis, prefix: this.prefix });
      this.events.set(queue, ev);
    }
    await ev.waitUntilReady();
    return ev;
  }

  async close(): Promise<void> {
    for (const abort of [...this.waits]) abort(new Error('producer closed while waiting for a job result'));
    await Promise.all([...this.events.values()].map((e) => e.close()));
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    if (this.ownsRedis) await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** Each event queue's payload union (what `bulk` validates a mixed list with). */
const QUEUE_SCHEMAS: Record<string, z.ZodType> = {
  [QUEUE.grants]: grantsJobSchema,
  [QUEUE.charges]: chargesJobSchema,
  [QUEUE.affinityEvents]: affinityJobSchema,
};

/** A batch job's id: from its events' content, so the same chunk sent twice is one job (BullMQ skips a known jobId). */
export function batchJobId(events: unknown[]): string {
  return `batch-${sha256(canonicalJson(events)).slice(0, 40)}`;
}

function validate(schema: z.ZodType, payload: unknown): { type: string; event_id: string } & Record<string, unknown> {
  const parsed = schema.safeParse(payload);
  if (!parsed.success) throw new PayloadError('invalid_payload', describeIssues(parsed.error));
  // Send what the caller wrote (not zod's output with defaults filled in): the payload hash is over it.
  return payload as { type: string; event_id: string } & Record<string, unknown>;
}

