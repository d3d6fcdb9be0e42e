import type { Histogram, JobStats } from './job-stats.ts';

/**
 * The Redis-kept counters and histograms (job-stats.ts) in Prometheus text format: prom-client cannot hold
 * totals kept outside the process. Every family is announced (HELP/TYPE) even before it has a sample, so
 * dashboards and rules see the names from the first scrape.
 */
const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const labels = (l: Record<string, string>) => Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`).join(',');

function family(lines: string[], name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
}

function histogram(lines: string[], name: string, l: Record<string, string>, h: Histogram): void {
  const base = labels(l);
  for (const b of h.buckets) lines.push(`${name}_bucket{${base},le="${b.le}"} ${b.count}`);
  lines.push(`${name}_bucket{${base},le="+Inf"} ${h.count}`, `${name}_sum{${base}} ${h.sumSeconds}`, `${name}_count{${base}} ${h.count}`);
}

export function jobStatsText(stats: JobStats | undefined): string {
  if (!stats) return '';
  const lines: string[] = [];
  family(lines, 'tally_jobs_processed_total', 'counter', 'Jobs completed, by queue and ApplyResult outcome (whole deployment)');
  for (const p of stats.processed) lines.push(`tally_jobs_processed_total{${labels({ queue: p.queue, outcome: p.outcome })}} ${p.count}`);
  family(lines, 'tally_jobs_failed_total', 'counter', 'Job failures (every failed attempt), by queue and reason code (whole deployment)');
  for (const f of stats.failed) lines.push(`tally_jobs_failed_total{${labels({ queue: f.queue, reason: f.reason })}} ${f.count}`);
  family(lines, 'tally_job_processing_seconds', 'histogram', 'Time from a worker taking a job to finishing it');
  for (const l of stats.latency) histogram(lines, 'tally_job_processing_seconds', { queue: l.queue }, l);

  family(lines, 'tally_webhook_deliveries_total', 'counter', 'Webhook POST attempts by webhook and result (delivered, http_status, redirect, timeout, network, refused)');
  for (const a of stats.webhookAttempts) lines.push(`tally_webhook_deliveries_total{${labels({ webhook: a.webhook, result: a.result })}} ${a.count}`);
  family(lines, 'tally_webhook_delivery_seconds', 'histogram', 'Duration of webhook POST attempts that were sent, by webhook');
  for (const l of stats.webhookLatency) histogram(lines, 'tally_webhook_delivery_seconds', { webhook: l.webhook }, l);
  family(lines, 'tally_webhook_dead_total', 'counter', 'Webhook deliveries given up on (retry window over, or webhook removed), by webhook');
  for (const d of stats.webhookDead) lines.push(`tally_webhook_dead_total{${labels({ webhook: d.webhook })}} ${d.count}`);
  family(lines, 'tally_alerts_total', 'counter', 'Alerts decided (pushed and posted to webhooks), by kind and asset');
  for (const a of stats.alerts) lines.push(`tally_alerts_total{${labels({ kind: a.kind, asset: a.asset })}} ${a.count}`);
  return `${lines.join('\n')}\n`;
}

export const SCRAPE_PARTS = ['queues', 'outbox', 'dead_letters', 'reconcile', 'db', 'jobs', 'money_flow', 'webhook_fanout'] as const;
export type ScrapePart = (typeof SCRAPE_PARTS)[number];

export function scrapeErrorsText(errors: ReadonlySet<string>): string {
  const lines: string[] = [];
  family(lines, 'tally_scrape_error', 'gauge', 'A part of this scrape that could not be read (1)');
  for (const part of SCRAPE_PARTS) lines.push(`tally_scrape_error{part="${part}"} ${errors.has(part) ? 1 : 0}`);
  return `${lines.join('\n')}\n`;
}
