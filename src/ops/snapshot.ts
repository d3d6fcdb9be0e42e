import type { AppContext } from '../context.ts';
import { QUEUE } from '../queues/common.ts';
import { reconcileKey } from './job-stats.ts';
import { WEBHOOKS_QUEUE } from '../webhooks/delivery.ts';

/** Every tally queue, for Bull Board, metrics and the dashboard. */
export const ALL_QUEUES: string[] = [...Object.values(QUEUE), WEBHOOKS_QUEUE];

const quiet = new WeakSet<object>();
/** The process's Queue for `name`; its connection errors are the health checks' business, not log noise. */
export function opsQueue(ctx: AppContext, name: string) {
  const q = ctx.producer.queue(name);
  if (!quiet.has(q)) {
    quiet.add(q);
    q.on('error', () => {});
  }
  return q;
}

export interface QueueSnapshot {
  queue: string;
  counts: Record<string, number>;
  /** Seconds the oldest waiting job has waited; 0 when none waits. */
  oldest_waiting_seconds: number;
}

const COUNT_TYPES = ['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized'] as const;

export async function queueSnapshots(ctx: AppContext): Promise<QueueSnapshot[]> {
  return Promise.all(
    ALL_QUEUES.map(async (name) => {
      const q = opsQueue(ctx, name);
      const counts = await q.getJobCounts(...COUNT_TYPES);
      // The wait list is newest-first; ascending order from index 0 is the oldest job.
      const [oldest] = counts.waiting ? await q.getJobs(['wait'], 0, 0, true) : [];
      const age = oldest?.timestamp ? Math.max(0, (Date.now() - oldest.timestamp) / 1000) : 0;
      return { queue: name, counts, oldest_waiting_seconds: age };
    }),
  );
}

export interface OutboxLag {
  pending: number;
  /** Age of the oldest row not yet relayed, seconds; 0 when the outbox is drained. */
  oldest_seconds: number;
}

export async function outboxLag(ctx: AppContext): Promise<OutboxLag> {
  const [row] = await ctx.sql<{ pending: number; oldest: number | null }[]>`
    SELECT count(*)::int AS pending, extract(epoch FROM now() - min(created_at))::float8 AS oldest
    FROM outbox WHERE relayed_at IS NULL`;
  return { pending: row?.pending ?? 0, oldest_seconds: Math.max(0, row?.oldest ?? 0) };
}

/** Rows in dead_letters: events that failed for good (bad input, conflicts), kept for an operator. */
export async function deadLetterCount(ctx: AppContext): Promise<number> {
  const [row] = await ctx.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM dead_letters`;
  return row?.n ?? 0;
}

/**
 * Connections tally processes hold on this database, by state, as PostgreSQL sees them: postgres.js keeps no
 * public pool statistics, and the server's view covers every process of the deployment at once.
 */
export async function dbConnections(ctx: AppContext): Promise<Record<string, number>> {
  const rows = await ctx.sql<{ state: string | null; n: number }[]>`
    SELECT coalesce(state, 'unknown') AS state, count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'tally' GROUP BY 1`;
  return Object.fromEntries(rows.map((r) => [r.state ?? 'unknown', r.n]));
}

export interface ReconcileStatus {
  ok: boolean;
  accounts_checked: number;
  violations: unknown[];
  at: string;
}

/** The last scheduled reconcile's summary, or null before the first one ran. */
export async function lastReconcile(ctx: AppContext): Promise<ReconcileStatus | null> {
  const raw = await ctx.redis.get(reconcileKey(ctx.env.TALLY_PREFIX));
  if (!raw) return null;
  try {
    return JSON.parse(raw) as ReconcileStatus;
  } catch {
    return null;
  }
}

/** Rejects after `ms`: a scrape or page must answer even while a dependency hangs. */
export function within<T>(p: Promise<T>, ms = 3000, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}
