import type { AppContext } from '../context.ts';
import { listDeadDeliveries, type DeadDelivery } from '../webhooks/dead.ts';
import { WEBHOOKS_QUEUE } from '../webhooks/delivery.ts';
import { readJobStats, readMinuteSeries } from './job-stats.ts';
import { opsQueue } from './snapshot.ts';
import { lastReconcile, outboxLag, queueSnapshots, type QueueSnapshot, type OutboxLag, type ReconcileStatus } from './snapshot.ts';

export const WINDOWS = { '24h': '24 hours', '7d': '7 days', '30d': '30 days' } as const;
export type WindowName = keyof typeof WINDOWS;

export interface DashboardData {
  generated_at: string;
  /** Last hour, one point per minute (Unix seconds), jobs finished per queue and per outcome. */
  throughput: { minutes: number[]; by_queue: Record<string, number[]>; by_outcome: Record<string, number[]> };
  /** Last hour's totals per queue and outcome (`failed` included), largest first. */
  outcomes: { queue: string; outcome: string; count: number }[];
  queues: QueueSnapshot[];
  dead_letters: { total: number; top_reasons: { queue: string; reason_code: string; reason: string; jobs: number; last_failed_at: string }[] };
  outbox: OutboxLag;
  usage: Record<WindowName, { by_source_type: { asset: string; source_type: string; amount: number; count: number }[]; top_consumers: { user_id: string; asset: string; amount: number; count: number }[] }>;
  invariants: ReconcileStatus | null;
  /** Webhook attempts by endpoint and result since the deployment began, dead totals, the latest dead deliveries. */
  webhooks: {
    endpoints: { webhook: string; by_result: Record<string, number>; attempts: number; dead: number; p95_seconds: number | null }[];
    dead_kept: number;
    recent_dead: DeadDelivery[];
  };
  /** Alerts decided, by kind and asset, since the deployment began. */
  alerts: { kind: string; asset: string; count: number }[];
}

/** Everything the ops dashboard shows, in one JSON document (`GET /admin/dashboard/data`). */
export async function dashboardData(ctx: AppContext): Promise<DashboardData> {
  const [series, queues, deadLetters, outbox, usage, invariants, activity] = await Promise.all([
    readMinuteSeries(ctx.redis, ctx.env.TALLY_PREFIX, 60),
    queueSnapshots(ctx),
    deadLetterSummary(ctx),
    outboxLag(ctx),
    usageSummary(ctx),
    lastReconcile(ctx),
    webhookAndAlertActivity(ctx),
  ]);
  const byQueue: Record<string, number[]> = {};
  const byOutcome: Record<string, number[]> = {};
  const totals = new Map<string, number>();
  series.forEach((m, i) => {
    for (const [key, n] of Object.entries(m.counts)) {
      totals.set(key, (totals.get(key) ?? 0) + n);
      const [queue = '', outcome = ''] = key.split('|');
      const q = (byQueue[queue] ??= new Array<number>(series.length).fill(0));
      const o = (byOutcome[outcome] ??= new Array<number>(series.length).fill(0));
      q[i] = (q[i] ?? 0) + n;
      o[i] = (o[i] ?? 0) + n;
    }
  });
  return {
    generated_at: new Date().toISOString(),
    throughput: { minutes: series.map((m) => m.minute * 60), by_queue: byQueue, by_outcome: byOutcome },
    outcomes: [...totals]
      .map(([key, count]) => ({ queue: key.split('|')[0] ?? '', outcome: key.split('|')[1] ?? '', count }))
      .sort((a, b) => b.count - a.count),
    queues,
    dead_letters: deadLetters,
    outbox,
    usage,
    invariants,
    ...activity,
  };
}

async function deadLetterSummary(ctx: AppContext): Promise<DashboardData['dead_letters']> {
  const [total] = await ctx.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM dead_letters`;
  const top = await ctx.sql<{ queue: string; reason_code: string; reason: string; jobs: number; last_failed_at: Date }[]>`
    SELECT queue, reason_code, left(min(reason), 160) AS reason, count(*)::int AS jobs, max(last_failed_at) AS last_failed_at
    FROM dead_letters GROUP BY queue, reason_code ORDER BY jobs DESC, last_failed_at DESC LIMIT 10`;
  return { total: total?.n ?? 0, top_reasons: top.map((r) => ({ ...r, last_failed_at: r.last_failed_at.toISOString() })) };
}

/**
 * Consumption (net of refunds) by source_type and the top consumers per window, read from the hourly usage
 * rollup the ledger keeps (usage_hourly), not from the entries: whole UTC hours, so a window is its length
 * plus the current partial hour. The page still caches it (dashboard.ts): the rollup has no index on hour.
 */
async function usageSummary(ctx: AppContext): Promise<DashboardData['usage']> {
  const out = {} as DashboardData['usage'];
  await Promise.all(
    (Object.keys(WINDOWS) as WindowName[]).map(async (w) => {
      const since = new Date(Math.floor((Date.now() - windowMs(w)) / 3600_000) * 3600_000);
      const [bySource, top] = await Promise.all([
        ctx.sql<{ asset: string; source_type: string; amount: bigint; count: bigint }[]>`
          SELECT asset, source_type, sum(amount)::bigint AS amount, sum(count)::bigint AS count
          FROM usage_hourly WHERE hour >= ${since}
          GROUP BY 1, 2 HAVING sum(amount) > 0 ORDER BY amount DESC LIMIT 30`,
        ctx.sql<{ user_id: string; asset: string; amount: bigint; count: bigint }[]>`
          SELECT user_id, asset, sum(amount)::bigint AS amount, sum(count)::bigint AS count
          FROM usage_hourly WHERE hour >= ${since}
          GROUP BY 1, 2 HAVING sum(amount) > 0 ORDER BY amount DESC LIMIT 10`,
      ]);
      out[w] = {
        by_source_type: bySource.map((r) => ({ ...r, amount: Number(r.amount), count: Number(r.count) })),
        top_consumers: top.map((r) => ({ ...r, amount: Number(r.amount), count: Number(r.count) })),
      };
    }),
  );
  return out;
}

async function webhookAndAlertActivity(ctx: AppContext): Promise<Pick<DashboardData, 'webhooks' | 'alerts'>> {
  const queue = opsQueue(ctx, WEBHOOKS_QUEUE);
  const [stats, dead] = await Promise.all([readJobStats(ctx.redis, ctx.env.TALLY_PREFIX), listDeadDeliveries(queue, { limit: 10 })]);
  const endpoints = new Map<string, DashboardData['webhooks']['endpoints'][number]>();
  const of = (webhook: string) => {
    let e = endpoints.get(webhook);
    if (!e) endpoints.set(webhook, (e = { webhook, by_result: {}, attempts: 0, dead: 0, p95_seconds: null }));
    return e;
  };
  for (const a of stats.webhookAttempts) {
    const e = of(a.webhook);
    e.by_result[a.result] = a.count;
    e.attempts += a.count;
  }
  for (const d of stats.webhookDead) of(d.webhook).dead = d.count;
  for (const l of stats.webhookLatency) {
    // The smallest bucket bound holding 95 % of the timed attempts: coarse, but honest about the buckets.
    const want = l.count * 0.95;
    of(l.webhook).p95_seconds = l.count === 0 ? null : (l.buckets.find((b) => b.count >= want)?.le ?? null);
  }
  return {
    webhooks: { endpoints: [...endpoints.values()].sort((a, b) => a.webhook.localeCompare(b.webhook)), dead_kept: dead.total, recent_dead: dead.items },
    alerts: [...stats.alerts].sort((a, b) => b.count - a.count),
  };
}

function windowMs(w: WindowName): number {
  return { '24h': 24, '7d': 7 * 24, '30d': 30 * 24 }[w] * 3600_000;
}
