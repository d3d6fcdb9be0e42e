import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Gauge, Registry, collectDefaultMetrics, register as defaultRegistry } from 'prom-client';
import type { AppContext } from '../context.ts';
import { HttpError } from '../errors.ts';
import { safeEqual } from '../http/auth.ts';
import { readJobStats, type JobStats } from './job-stats.ts';
import { dbConnections, lastReconcile, outboxLag, queueSnapshots, within } from './snapshot.ts';

/**
 * `/metrics`: Prometheus text. Queue depth, outbox lag, reconcile and DB connections are read at scrape time
 * from Redis and PostgreSQL (so any api process reports the deployment); job counters and the latency
 * histogram come from the Redis totals the workers flush (job-stats.ts). A part that cannot be read within
 * its timeout is reported by `tally_scrape_error{part}` instead of failing the whole scrape.
 */
export function metricsRoutes(app: FastifyInstance, ctx: AppContext): void {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tally_' });
  const errors = new Set<string>();
  const attempt = async <T>(part: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await within(fn(), 3000, part);
    } catch {
      errors.add(part);
      return undefined;
    }
  };

  const queueJobs = new Gauge({ name: 'tally_queue_jobs', help: 'Jobs in each queue by state', labelNames: ['queue', 'state'], registers: [registry] });
  const oldest = new Gauge({ name: 'tally_queue_oldest_waiting_seconds', help: 'Age of the oldest waiting job', labelNames: ['queue'], registers: [registry] });
  const outboxPending = new Gauge({ name: 'tally_outbox_pending', help: 'Outbox rows not yet relayed', registers: [registry] });
  const outboxLagS = new Gauge({ name: 'tally_outbox_lag_seconds', help: 'Age of the oldest outbox row not yet relayed', registers: [registry] });
  const reconcileOk = new Gauge({ name: 'tally_reconcile_ok', help: 'Last reconcile: 1 = every invariant holds, 0 = violations, -1 = not run yet', registers: [registry] });
  const reconcileViolations = new Gauge({ name: 'tally_reconcile_violations', help: 'Violations the last reconcile found', registers: [registry] });
  const reconcileAt = new Gauge({ name: 'tally_reconcile_last_run_timestamp_seconds', help: 'When the last reconcile finished (Unix time)', registers: [registry] });
  const dbConns = new Gauge({ name: 'tally_db_connections', help: 'PostgreSQL connections held by tally processes, by state', labelNames: ['state'], registers: [registry] });
  new Gauge({ name: 'tally_db_pool_max', help: 'PostgreSQL pool size of each tally process (TALLY_DB_POOL)', registers: [registry] }).set(ctx.env.TALLY_DB_POOL);

  async function refresh(): Promise<void> {
    const [queues, outbox, reconcile, conns] = await Promise.all([
      attempt('queues', () => queueSnapshots(ctx)),
      attempt('outbox', () => outboxLag(ctx)),
      attempt('reconcile', () => lastReconcile(ctx)),
      attempt('db', () => dbConnections(ctx)),
    ]);
    queueJobs.reset();
    oldest.reset();
    for (const q of queues ?? []) {
      for (const [state, n] of Object.entries(q.counts)) queueJobs.set({ queue: q.queue, state }, n);
      oldest.set({ queue: q.queue }, q.oldest_waiting_seconds);
    }
    if (outbox) {
      outboxPending.set(outbox.pending);
      outboxLagS.set(outbox.oldest_seconds);
    }
    if (reconcile !== undefined) {
      reconcileOk.set(reconcile === null ? -1 : reconcile.ok ? 1 : 0);
      reconcileViolations.set(reconcile?.violations.length ?? 0);
      reconcileAt.set(reconcile ? Date.parse(reconcile.at) / 1000 : 0);
    }
    dbConns.reset();
    for (const [state, n] of Object.entries(conns ?? {})) dbConns.set({ state }, n);
  }

  app.get('/metrics', async (req, reply) => {
    checkMetricsToken(req, ctx);
    errors.clear();
    await refresh();
    const jobs = await attempt('jobs', () => readJobStats(ctx.redis, ctx.env.TALLY_PREFIX));
    // Modules that count things in-process (push) register on prom-client's default registry.
    const text = (await registry.metrics()) + (await defaultRegistry.metrics()) + jobStatsText(jobs) + scrapeErrorsText(errors);
    return reply.type(registry.contentType).send(text);
  });
}

function checkMetricsToken(req: FastifyRequest, ctx: AppContext): void {
  const token = ctx.env.TALLY_METRICS_TOKEN;
  if (!token) return;
  const header = req.headers.authorization ?? '';
  const given = header.toLowerCase().startsWith('bearer ') ? header.slice(7).trim() : undefined;
  const admin = ctx.env.TALLY_ADMIN_TOKEN;
  if (given !== undefined && (safeEqual(given, token) || (admin !== undefined && safeEqual(given, admin)))) return;
  throw new HttpError(401, 'unauthorized', given === undefined ? 'missing bearer token' : 'invalid token');
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** The Redis-backed counters and histogram in exposition format (prom-client cannot hold externally kept totals). */
export function jobStatsText(stats: JobStats | undefined): string {
  if (!stats) return '';
  const lines: string[] = [];
  lines.push('# HELP tally_jobs_processed_total Jobs completed, by queue and ApplyResult outcome (whole deployment)');
  lines.push('# TYPE tally_jobs_processed_total counter');
  for (const p of stats.processed) lines.push(`tally_jobs_processed_total{queue="${esc(p.queue)}",outcome="${esc(p.outcome)}"} ${p.count}`);
  lines.push('# HELP tally_jobs_failed_total Job failures, by queue and reason code (whole deployment)');
  lines.push('# TYPE tally_jobs_failed_total counter');
  for (const f of stats.failed) lines.push(`tally_jobs_failed_total{queue="${esc(f.queue)}",reason="${esc(f.reason)}"} ${f.count}`);
  lines.push('# HELP tally_job_processing_seconds Time from a worker taking a job to finishing it');
  lines.push('# TYPE tally_job_processing_seconds histogram');
  for (const l of stats.latency) {
    const q = esc(l.queue);
    for (const b of l.buckets) lines.push(`tally_job_processing_seconds_bucket{queue="${q}",le="${b.le}"} ${b.count}`);
    lines.push(`tally_job_processing_seconds_bucket{queue="${q}",le="+Inf"} ${l.count}`);
    lines.push(`tally_job_processing_seconds_sum{queue="${q}"} ${l.sumSeconds}`);
    lines.push(`tally_job_processing_seconds_count{queue="${q}"} ${l.count}`);
  }
  return `${lines.join('\n')}\n`;
}

function scrapeErrorsText(errors: Set<string>): string {
  const lines = ['# HELP tally_scrape_error A part of this scrape that could not be read (1)', '# TYPE tally_scrape_error gauge'];
  for (const part of ['queues', 'outbox', 'reconcile', 'db', 'jobs']) lines.push(`tally_scrape_error{part="${part}"} ${errors.has(part) ? 1 : 0}`);
  return `${lines.join('\n')}\n`;
}
