import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter, Gauge, Registry, collectDefaultMetrics, register as defaultRegistry } from 'prom-client';
import type { AppContext } from '../context.ts';
import { HttpError } from '../errors.ts';
import { safeEqual } from '../http/auth.ts';
import { readJobStats } from './job-stats.ts';
import { jobStatsText, scrapeErrorsText, type ScrapePart } from './metrics-text.ts';
import { dbConnections, deadLetterCount, lastReconcile, outboxLag, queueSnapshots, within, type OutboxLag, type QueueSnapshot } from './snapshot.ts';
import { moneyFlowText } from '../money-flow/metrics-text.ts';
import { readMoneyFlow, type MoneyFlow } from '../money-flow/rollup.ts';
import { fanoutBehind } from '../webhooks/fanout.ts';

/**
 * prom-client's default metrics that `promtool check metrics` rejects: gauges named `_total` (a suffix kept for
 * counters). The same numbers stay available as `sum(tally_nodejs_active_handles)` etc. (the per-type gauges).
 */
const MISNAMED_DEFAULTS = ['tally_nodejs_active_handles_total', 'tally_nodejs_active_requests_total', 'tally_nodejs_active_resources_total'];

/**
 * The reads a scrape would repeat: PostgreSQL (outbox lag, dead letters, connections, the money-flow rollup, the
 * webhook fan-out's cursor) and the per-queue Redis scripts.
 */
interface Snapshot {
  at: number;
  queues?: QueueSnapshot[];
  outbox?: OutboxLag;
  deadLetters?: number;
  conns?: Record<string, number>;
  money?: MoneyFlow[];
  fanoutBehind?: bigint;
  errors: Set<ScrapePart>;
}

/**
 * `/metrics`: Prometheus text for the whole deployment, whichever api process is scraped. The expensive reads
 * (PostgreSQL, and two Redis scripts per queue) are cached for TALLY_METRICS_CACHE_MS and shared by concurrent
 * scrapes, so scrapes at any rate cost the database at most one read per period; the age of what is shown is
 * `tally_metrics_snapshot_age_seconds`. The last reconcile (one GET) and the job counters (one HGETALL) are
 * read per scrape: they are cheap, and a reconcile's verdict should not wait a period to show. A part that
 * cannot be read within its timeout is reported by `tally_scrape_error{part}` instead of failing the scrape.
 */
export function metricsRoutes(app: FastifyInstance, ctx: AppContext): void {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tally_' });
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);

  const queueJobs = new Gauge({ name: 'tally_queue_jobs', help: 'Jobs in each queue by state', labelNames: ['queue', 'state'], registers: [registry] });
  const oldest = new Gauge({ name: 'tally_queue_oldest_waiting_seconds', help: 'Age of the oldest waiting job', labelNames: ['queue'], registers: [registry] });
  const outboxPending = new Gauge({ name: 'tally_outbox_pending', help: 'Outbox rows not yet relayed', registers: [registry] });
  const outboxLagS = new Gauge({ name: 'tally_outbox_lag_seconds', help: 'Age of the oldest outbox row not yet relayed', registers: [registry] });
  const deadLetters = new Gauge({ name: 'tally_dead_letters', help: 'Events that failed for good (dead_letters rows), kept for an operator', registers: [registry] });
  const reconcileOk = new Gauge({ name: 'tally_reconcile_ok', help: 'Last reconcile: 1 = every invariant holds, 0 = violations, -1 = not run yet', registers: [registry] });
  const reconcileViolations = new Gauge({ name: 'tally_reconcile_violations', help: 'Violations the last reconcile found', registers: [registry] });
  const reconcileAt = new Gauge({ name: 'tally_reconcile_last_run_timestamp_seconds', help: 'When the last reconcile finished (Unix time)', registers: [registry] });
  const dbConns = new Gauge({ name: 'tally_db_connections', help: 'PostgreSQL connections held by tally processes, by state', labelNames: ['state'], registers: [registry] });
  new Gauge({ name: 'tally_db_pool_max', help: 'PostgreSQL pool size of each tally process (TALLY_DB_POOL)', registers: [registry] }).set(ctx.env.TALLY_DB_POOL);
  const snapshotAge = new Gauge({ name: 'tally_metrics_snapshot_age_seconds', help: 'Age of the cached queue, outbox and connection readings in this scrape', registers: [registry] });
  const fanoutBehindRows = new Gauge({ name: 'tally_webhook_fanout_behind', help: 'Outbox feed rows the webhook fan-out has not turned into deliveries yet', registers: [registry] });
  const refreshes = new Counter({ name: 'tally_metrics_snapshot_refreshes_total', help: 'Times this process re-read queues, outbox and connections for /metrics', registers: [registry] });

  const attempt = async <T>(errors: Set<ScrapePart>, part: ScrapePart, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await within(fn(), 3000, part);
    } catch {
      errors.add(part);
      return undefined;
    }
  };

  let cached: Promise<Snapshot> | undefined;
  const snapshot = (): Promise<Snapshot> => {
    const ttl = ctx.env.TALLY_METRICS_CACHE_MS;
    // One refresh in flight at a time, shared by every scrape that arrives meanwhile.
    if (!cached) {
      refreshes.inc();
      cached = (async () => {
        const errors = new Set<ScrapePart>();
        const [queues, outbox, dead, conns, money, behind] = await Promise.all([
          attempt(errors, 'queues', () => queueSnapshots(ctx)),
          attempt(errors, 'outbox', () => outboxLag(ctx)),
          attempt(errors, 'dead_letters', () => deadLetterCount(ctx)),
          attempt(errors, 'db', () => dbConnections(ctx)),
          attempt(errors, 'money_flow', () => readMoneyFlow(ctx.sql)),
          attempt(errors, 'webhook_fanout', () => fanoutBehind(ctx.sql)),
        ]);
        return { at: Date.now(), queues, outbox, deadLetters: dead, conns, money, fanoutBehind: behind, errors };
      })();
      void cached.then((s) => {
        const left = ttl - (Date.now() - s.at);
        if (left <= 0) cached = undefined;
        else setTimeout(() => (cached = undefined), left).unref();
      });
    }
    return cached;
  };

  function show(s: Snapshot, reconcile: Awaited<ReturnType<typeof lastReconcile>> | undefined): void {
    queueJobs.reset();
    oldest.reset();
    for (const q of s.queues ?? []) {
      for (const [state, n] of Object.entries(q.counts)) queueJobs.set({ queue: q.queue, state }, n);
      oldest.set({ queue: q.queue }, q.oldest_waiting_seconds);
    }
    if (s.outbox) {
      outboxPending.set(s.outbox.pending);
      outboxLagS.set(s.outbox.oldest_seconds);
    }
    if (s.deadLetters !== undefined) deadLetters.set(s.deadLetters);
    if (s.fanoutBehind !== undefined) fanoutBehindRows.set(Number(s.fanoutBehind));
    dbConns.reset();
    for (const [state, n] of Object.entries(s.conns ?? {})) dbConns.set({ state }, n);
    snapshotAge.set((Date.now() - s.at) / 1000);
    if (reconcile !== undefined) {
      reconcileOk.set(reconcile === null ? -1 : reconcile.ok ? 1 : 0);
      reconcileViolations.set(reconcile?.violations.length ?? 0);
      reconcileAt.set(reconcile ? Date.parse(reconcile.at) / 1000 : 0);
    }
  }

  app.get('/metrics', async (req, reply) => {
    checkMetricsToken(req, ctx);
    const errors = new Set<ScrapePart>();
    const [snap, reconcile, jobs] = await Promise.all([
      snapshot(),
      attempt(errors, 'reconcile', () => lastReconcile(ctx)),
      attempt(errors, 'jobs', () => readJobStats(ctx.redis, ctx.env.TALLY_PREFIX)),
    ]);
    for (const e of snap.errors) errors.add(e);
    show(snap, reconcile);
    // Modules that count things in-process (push) register on prom-client's default registry.
    const text = (await registry.metrics()) + (await defaultRegistry.metrics()) + jobStatsText(jobs) + moneyFlowText(snap.money) + scrapeErrorsText(errors);
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
