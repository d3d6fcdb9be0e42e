import type { Job, Worker } from 'bullmq';
import type { RedisClient as Redis } from '../redis.ts';

/**
 * Job counters and the processing-latency histogram, kept in Redis rather than in process memory: under PM2
 * the worker processes serve no HTTP, so whichever api process is scraped reports the whole deployment's
 * totals. Each process counts in memory and adds its deltas with one HINCRBY pipeline per second, so the
 * cost stays one round trip a second however many jobs run.
 */

/** Histogram bucket bounds for job processing time, seconds (group commit makes most jobs take 5–200 ms). */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const FLUSH_MS = 1000;

export function jobStatsKey(prefix: string): string {
  return `${prefix}:ops:jobs`; // under the BullMQ prefix, so `{tally}` keeps it in the queues' cluster slot
}
/** One small hash per minute (`queue|outcome` → count), kept two hours: the dashboard's last-hour series. */
export function minuteKey(prefix: string, minute: number): string {
  return `${prefix}:ops:m:${minute}`;
}
const MINUTE_TTL_S = 2 * 3600;
/**
 * Keeps the last reconcile summary for the metric and the dashboard. Written by the maintenance job before it
 * completes, so whoever sees the job's result also sees the summary.
 */
export async function recordReconcile(redis: Redis, prefix: string, summary: object): Promise<void> {
  await redis.set(reconcileKey(prefix), JSON.stringify({ ...summary, at: new Date().toISOString() }));
}

export function reconcileKey(prefix: string): string {
  return `${prefix}:ops:reconcile`;
}

/**
 * Hash fields: `p|queue|outcome`, `f|queue|reason`, `b|queue|le` (cumulative), `s|queue` (ms), `c|queue`;
 * webhooks `w|webhook|result`, `wb|webhook|le`, `ws|webhook` (ms), `wc|webhook`, `wd|webhook`; alerts `a|kind|asset`.
 */
const pending = new Map<string, number>();
let sink: { redis: Redis; prefix: string } | undefined;
let timer: NodeJS.Timeout | undefined;

function add(field: string, by: number): void {
  pending.set(field, (pending.get(field) ?? 0) + by);
}

/** The stable code a failure reason starts with (`invalid_payload: …`), or `error` for anything else. */
export function reasonCode(reason: string | undefined): string {
  const m = /^([a-z_]{3,40}):/.exec(reason ?? '');
  return m ? m[1]! : 'error';
}

function minuteNow(): number {
  return Math.floor(Date.now() / 60_000);
}

export function recordCompleted(queue: string, outcome: string, ms: number): void {
  add(`p|${queue}|${outcome}`, 1);
  add(`m|${minuteNow()}|${queue}|${outcome}`, 1);
  const s = Math.max(0, ms) / 1000;
  for (const le of LATENCY_BUCKETS) if (s <= le) add(`b|${queue}|${le}`, 1);
  add(`s|${queue}`, Math.round(ms));
  add(`c|${queue}`, 1);
}

export function recordFailed(queue: string, reason: string | undefined): void {
  add(`f|${queue}|${reasonCode(reason)}`, 1);
  add(`m|${minuteNow()}|${queue}|failed`, 1);
}

/** Histogram bounds for one webhook POST, seconds (the timeout defaults to 10 s). */
export const WEBHOOK_LATENCY_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * One webhook POST attempt and how it ended (`delivered`, `http_status`, `redirect`, `timeout`, `network`,
 * `refused`); `ms` is null when nothing was sent (refused before connecting).
 */
export function recordWebhookAttempt(webhook: string, result: string, ms: number | null): void {
  add(`w|${webhook}|${result}`, 1);
  if (ms === null) return;
  const s = Math.max(0, ms) / 1000;
  for (const le of WEBHOOK_LATENCY_BUCKETS) if (s <= le) add(`wb|${webhook}|${le}`, 1);
  add(`ws|${webhook}`, Math.round(ms));
  add(`wc|${webhook}`, 1);
}

/** A delivery given up on (its retry window is over, or its webhook is gone): it stays in the failed set. */
export function recordWebhookDead(webhook: string): void {
  add(`wd|${webhook}`, 1);
}

/**
 * An alert was decided (CONTRACT §6): called by the code that decides alerts — inside the ledger transaction's
 * commit path or the expire maintenance — once per alert. `kind` is low_balance, expiring_soon or overdrawn.
 * Counted in the calling process and flushed to Redis by the worker role's sink, like the job counters.
 */
export function recordAlertSent(kind: string, asset: string): void {
  add(`a|${kind}|${asset}`, 1);
}

function outcomeOf(job: Job): string {
  const rv = job.returnvalue as { outcome?: unknown } | null | undefined;
  return typeof rv?.outcome === 'string' ? rv.outcome : 'done';
}

/** Counts every job the worker finishes. */
export function observeWorker(worker: Worker): void {
  worker.on('completed', (job) => {
    const ms = job.finishedOn && job.processedOn ? job.finishedOn - job.processedOn : 0;
    recordCompleted(worker.name, outcomeOf(job), ms);
  });
  worker.on('failed', (job, err) => recordFailed(worker.name, job?.failedReason ?? err?.message));
  // The last jobs of a deploy finish during close(): flush once the worker has stopped (Redis is still open).
  worker.on('closed', () => void flushJobStats());
}

export async function flushJobStats(): Promise<void> {
  if (!sink || pending.size === 0) return;
  const batch = [...pending.entries()];
  pending.clear();
  const key = jobStatsKey(sink.prefix);
  const pipe = sink.redis.pipeline();
  const minutes = new Set<number>();
  for (const [field, by] of batch) {
    if (field.startsWith('m|')) {
      const [, minute, queue, outcome] = field.split('|');
      pipe.hincrby(minuteKey(sink.prefix, Number(minute)), `${queue}|${outcome}`, by);
      minutes.add(Number(minute));
    } else pipe.hincrby(key, field, by);
  }
  for (const m of minutes) pipe.expire(minuteKey(sink.prefix, m), MINUTE_TTL_S);
  try {
    await pipe.exec();
  } catch {
    for (const [field, by] of batch) add(field, by); // Redis away: keep the counts for the next flush
  }
}

/** Starts flushing to `redis`; the returned stop flushes what is left. */
export function startJobStatsSink(redis: Redis, prefix: string): { close(): Promise<void> } {
  sink = { redis, prefix };
  timer ??= setInterval(() => void flushJobStats(), FLUSH_MS);
  timer.unref();
  return {
    async close() {
      clearInterval(timer);
      timer = undefined;
      await flushJobStats();
    },
  };
}

export interface Histogram {
  buckets: { le: number; count: number }[];
  sumSeconds: number;
  count: number;
}

export interface JobStats {
  processed: { queue: string; outcome: string; count: number }[];
  failed: { queue: string; reason: string; count: number }[];
  latency: ({ queue: string } & Histogram)[];
  webhookAttempts: { webhook: string; result: string; count: number }[];
  webhookLatency: ({ webhook: string } & Histogram)[];
  webhookDead: { webhook: string; count: number }[];
  alerts: { kind: string; asset: string; count: number }[];
}

/** Reads the deployment-wide totals back. */
export async function readJobStats(redis: Redis, prefix: string): Promise<JobStats> {
  return parseJobStats(await redis.hgetall(jobStatsKey(prefix)));
}

export function parseJobStats(raw: Record<string, string>): JobStats {
  const stats: JobStats = { processed: [], failed: [], latency: [], webhookAttempts: [], webhookLatency: [], webhookDead: [], alerts: [] };
  const histograms = (bounds: number[]) => {
    const byKey = new Map<string, Histogram>();
    const of = (key: string) => {
      let h = byKey.get(key);
      if (!h) byKey.set(key, (h = { buckets: bounds.map((le) => ({ le, count: 0 })), sumSeconds: 0, count: 0 }));
      return h;
    };
    return { byKey, of };
  };
  const jobs = histograms(LATENCY_BUCKETS);
  const hooks = histograms(WEBHOOK_LATENCY_BUCKETS);
  const setBucket = (h: Histogram, le: string, n: number) => {
    const b = h.buckets.find((x) => x.le === Number(le));
    if (b) b.count = n;
  };
  for (const [field, value] of Object.entries(raw)) {
    const [kind, a = '', b = ''] = field.split('|');
    const n = Number(value);
    if (kind === 'p') stats.processed.push({ queue: a, outcome: b, count: n });
    else if (kind === 'f') stats.failed.push({ queue: a, reason: b, count: n });
    else if (kind === 'b') setBucket(jobs.of(a), b, n);
    else if (kind === 's') jobs.of(a).sumSeconds = n / 1000;
    else if (kind === 'c') jobs.of(a).count = n;
    else if (kind === 'w') stats.webhookAttempts.push({ webhook: a, result: b, count: n });
    else if (kind === 'wb') setBucket(hooks.of(a), b, n);
    else if (kind === 'ws') hooks.of(a).sumSeconds = n / 1000;
    else if (kind === 'wc') hooks.of(a).count = n;
    else if (kind === 'wd') stats.webhookDead.push({ webhook: a, count: n });
    else if (kind === 'a') stats.alerts.push({ kind: a, asset: b, count: n });
  }
  stats.latency = [...jobs.byKey].map(([queue, h]) => ({ queue, ...h }));
  stats.webhookLatency = [...hooks.byKey].map(([webhook, h]) => ({ webhook, ...h }));
  return stats;
}

/** The last `minutes` minutes, oldest first: per minute, `queue|outcome` → jobs finished in it. */
export async function readMinuteSeries(redis: Redis, prefix: string, minutes = 60): Promise<{ minute: number; counts: Record<string, number> }[]> {
  const last = minuteNow();
  const pipe = redis.pipeline();
  const wanted: number[] = [];
  for (let m = last - minutes + 1; m <= last; m++) {
    wanted.push(m);
    pipe.hgetall(minuteKey(prefix, m));
  }
  const replies = (await pipe.exec()) ?? [];
  return wanted.map((minute, i) => {
    const raw = (replies[i]?.[1] ?? {}) as Record<string, string>;
    return { minute, counts: Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)])) };
  });
}
