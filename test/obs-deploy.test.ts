import '../src/modules.ts'; // the webhooks worker and the job-stats sink, as the CLI loads them
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { flushJobStats, recordAlertSent } from '../src/ops/job-stats.ts';
import { deliveryId, WEBHOOKS_QUEUE } from '../src/webhooks/delivery.ts';
import { enqueueDeliveries } from '../src/webhooks/enqueue.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { ensurePromtool, promtool } from './helpers/promtool.ts';
import { ROOT, startTally, waitFor, type InProcessTally } from './helpers/tally.ts';
import { startReceiver, type Receiver } from './helpers/webhook-receiver.ts';

const PROMTOOL = ensurePromtool('obs-deploy');
const RULES = join(ROOT, 'deploy', 'prometheus', 'tally-alerts.yml');
const RULE_TESTS = join(ROOT, 'deploy', 'prometheus', 'tally-alerts.test.yml');
const DASHBOARD = join(ROOT, 'deploy', 'grafana', 'tally-dashboard.json');

/**
 * Grafana's "classic" dashboard JSON model (the format of dashboard import and file provisioning, as documented
 * on Grafana's "Dashboard JSON model" page), for the parts this dashboard uses. Strict where a typo would make
 * Grafana silently show nothing: panel types, gridPos on the 24-column grid, datasource references, targets.
 */
const datasourceRef = z.object({ type: z.literal('prometheus'), uid: z.literal('${datasource}') }).strict();
const gridPos = z.object({ x: z.number().int().min(0).max(23), y: z.number().int().min(0), w: z.number().int().min(1).max(24), h: z.number().int().min(1) }).strict()
  .refine((g) => g.x + g.w <= 24, 'panel runs past the 24-column grid');
const target = z.object({
  refId: z.string().regex(/^[A-Z]$/),
  datasource: datasourceRef,
  expr: z.string().min(1),
  legendFormat: z.string(),
  range: z.boolean().optional(),
  instant: z.boolean().optional(),
}).strict();
const fieldConfig = z.object({ defaults: z.record(z.string(), z.unknown()), overrides: z.array(z.unknown()) }).strict();
const dataPanel = z.object({
  id: z.number().int().positive(),
  type: z.enum(['timeseries', 'stat']),
  title: z.string().min(1),
  description: z.string().optional(),
  datasource: datasourceRef,
  gridPos,
  targets: z.array(target).min(1),
  fieldConfig,
  options: z.record(z.string(), z.unknown()),
}).strict();
const rowPanel = z.object({ id: z.number().int().positive(), type: z.literal('row'), title: z.string(), collapsed: z.literal(false), gridPos, panels: z.array(z.never()) }).strict();
const dashboardSchema = z.object({
  id: z.null(),
  uid: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/),
  title: z.string().min(1),
  description: z.string(),
  tags: z.array(z.string()),
  timezone: z.enum(['browser', 'utc', '']),
  editable: z.boolean(),
  graphTooltip: z.union([z.literal(0), z.literal(1), z.literal(2)]),
  liveNow: z.boolean(),
  time: z.object({ from: z.string(), to: z.string() }).strict(),
  timepicker: z.object({}).strict(),
  refresh: z.string().regex(/^\d+[smhd]$/),
  schemaVersion: z.number().int().min(36), // Grafana 9.x+ migrates anything older on load; 36 = datasource refs as objects
  version: z.number().int(),
  weekStart: z.string(),
  fiscalYearStartMonth: z.number().int().min(0).max(11),
  links: z.array(z.unknown()),
  annotations: z.object({ list: z.array(z.object({ builtIn: z.literal(1), type: z.literal('dashboard') }).passthrough()) }).strict(),
  templating: z.object({
    list: z.array(z.object({ name: z.literal('datasource'), type: z.literal('datasource'), query: z.literal('prometheus') }).passthrough()).length(1),
  }).strict(),
  panels: z.array(z.union([dataPanel, rowPanel])).min(1),
}).strict();

type Dashboard = z.infer<typeof dashboardSchema>;
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as unknown;

/** Every PromQL expression the dashboard and the alert rules hold, with Grafana's variables given values. */
function dashboardExprs(d: Dashboard): { where: string; expr: string }[] {
  return d.panels.flatMap((p) => (p.type === 'row' ? [] : p.targets.map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr }))));
}
const substitute = (expr: string) => expr.replaceAll('$__rate_interval', '5m').replaceAll('$__range', '1h').replaceAll('$__interval', '1m');
function ruleExprs(): { where: string; expr: string }[] {
  const doc = parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })));
}
/** Metric names in an expression (tally's all start with `tally_`; label values are stripped first). */
function metricNames(expr: string): string[] {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return [...new Set(noStrings.match(/\btally_[a-z0-9_]+/g) ?? [])];
}
/** Label names an expression groups by (`by (a, b)`), or names in `without`/`on` clauses are left alone. */
function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(/\bby\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim()).filter(Boolean));
}

let world: TestWorld;
let tally: InProcessTally;
let rx: Receiver;
let families: Map<string, { type: string; labels: Set<string> }>;

beforeAll(async () => {
  if (!PROMTOOL) return;
  world = await createWorld({ TALLY_WEBHOOK_BACKOFF_MS: '50', TALLY_WEBHOOK_RETRY_SECONDS: '60' });
  rx = await startReceiver('whsec-deploy-0123456789');
  await world.applyConfig({
    assets: { points: { default_expiry_days: 180 } },
    pricing: { points: { script: { mode: 'fixed', points: 5 } } },
    webhooks: [{ id: 'ops', url: rx.url, secret: 'whsec-deploy-0123456789', events: ['alert'], allow_private_network: true }],
  });
  tally = await startTally(world);
  // Activity, so that every family the dashboard and rules use has samples (and so its labels) in the scrape.
  await tally.producer.grant({ event_id: 'd-g1', user_id: 'dee', asset: 'points', amount: 50, source: 'gift' }, { wait: true });
  await tally.producer.charge({ event_id: 'd-c1', user_id: 'dee', asset: 'nope', source_type: 'script', source_id: 's', policy: 'postpaid' }).catch(() => {});
  const e = { id: 'ob-deploy-1', type: 'alert' as const, ts: new Date().toISOString(), user_id: 'dee', data: { kind: 'overdrawn', asset: 'points', balance: -1 } };
  await enqueueDeliveries(tally.started.ctx, [e]);
  recordAlertSent('overdrawn', 'points');
  const job = () => tally.started.ctx.producer.queue(WEBHOOKS_QUEUE).getJob(deliveryId('ops', e.id));
  await waitFor('the delivery', async () => (await (await job())?.getState()) === 'completed');
  // And a dead one: a webhook no longer in the config.
  await enqueueDeliveries(tally.started.ctx, [e], [{ id: 'gone', url: rx.url, secret: 'whsec-deploy-0123456789', events: ['alert'], allow_private_network: true }]);
  const gone = () => tally.started.ctx.producer.queue(WEBHOOKS_QUEUE).getJob(deliveryId('gone', e.id));
  await waitFor('the dead delivery', async () => (await (await gone())?.getState()) === 'failed');
  await flushJobStats();
  const text = await waitFor('counters in Redis', async () => {
    const t = await (await fetch(`${tally.base}/metrics`)).text();
    return /tally_jobs_failed_total\{queue="charges"/.test(t) && /tally_webhook_deliveries_total\{/.test(t) && /tally_webhook_dead_total\{/.test(t) ? t : undefined;
  });
  families = new Map();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(name!, { type: type!, labels: new Set() });
  for (const [, name, labels] of text.matchAll(/^([a-z_:][a-z0-9_:]*)\{([^}]*)\}/gm)) {
    const base = families.has(name!) ? name! : name!.replace(/_(bucket|sum|count)$/, '');
    for (const [, l] of labels!.matchAll(/([a-z_]+)="/g)) families.get(base)?.labels.add(l!);
  }
}, 120_000);

afterAll(async () => {
  await tally?.stop();
  await rx?.close();
  await world?.drop();
});

describe.skipIf(!PROMTOOL)('deploy/prometheus alert rules', () => {
  it('pass `promtool check rules`', () => {
    const r = promtool(PROMTOOL!, ['check', 'rules', RULES]);
    expect(r.out).toContain('SUCCESS');
    expect(r.code).toBe(0);
  });

  it('pass their unit tests (`promtool test rules`)', () => {
    const r = promtool(PROMTOOL!, ['test', 'rules', RULE_TESTS]);
    expect(r.out).toContain('SUCCESS');
    expect(r.code).toBe(0);
  });

  it('cover what issue 12 asks for', () => {
    const names = ruleExprs().map((r) => r.where);
    for (const a of ['TallyQueueBacklog', 'TallyOldestWaitingJob', 'TallyJobsFailing', 'TallyDeadLetters', 'TallyOutboxLag', 'TallyReconcileFailing', 'TallyWebhookFailures']) {
      expect(names).toContain(`alert ${a}`);
    }
  });
});

describe.skipIf(!PROMTOOL)('deploy/grafana dashboard', () => {
  it("matches Grafana's classic dashboard model: known panel types, the 24-column grid, unique ids, the datasource variable", () => {
    const d = dashboardSchema.parse(dashboard);
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    // No two panels overlap on the grid.
    const cells = new Map<string, string>();
    for (const p of d.panels) {
      const g = p.gridPos;
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          const key = `${x},${y}`;
          expect(cells.get(key), `"${p.title}" overlaps "${cells.get(key)}"`).toBeUndefined();
          cells.set(key, p.title);
        }
      }
    }
    for (const p of d.panels) {
      if (p.type === 'row') continue;
      expect(new Set(p.targets.map((t) => t.refId)).size).toBe(p.targets.length);
    }
  });

  it('has only PromQL that Prometheus parses (each expression checked as a recording rule by promtool)', () => {
    const d = dashboardSchema.parse(dashboard);
    const exprs = dashboardExprs(d);
    const dir = mkdtempSync(join(tmpdir(), 'tally-dash-'));
    const file = join(dir, 'dashboard-exprs.yml');
    const rules = exprs.map((e, i) => `      - record: tally_dashboard:expr_${i}\n        expr: ${JSON.stringify(substitute(e.expr))}`).join('\n');
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules}\n`);
    const r = promtool(PROMTOOL!, ['check', 'rules', file]);
    expect(r.out).toContain(`SUCCESS: ${exprs.length} rules found`);
    // The check has teeth: a typo fails it.
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n      - record: x\n        expr: ${JSON.stringify('sum by (queue (rate(tally_jobs_processed_total[5m]))')}\n`);
    expect(promtool(PROMTOOL!, ['check', 'rules', file]).code).not.toBe(0);
  });

  it('references only metrics (and grouping labels) that a live /metrics exposes — rules included', () => {
    const d = dashboardSchema.parse(dashboard);
    const problems: string[] = [];
    for (const { where, expr } of [...dashboardExprs(d), ...ruleExprs()]) {
      const names = metricNames(expr);
      if (names.length === 0) problems.push(`${where}: no tally metric`);
      const known = names.map((n) => {
        const fam = families.get(n) ?? families.get(n.replace(/_(bucket|sum|count)$/, ''));
        if (!fam) problems.push(`${where}: ${n} is not in /metrics`);
        return fam;
      });
      const labels = new Set(known.flatMap((f) => [...(f?.labels ?? [])]));
      if (names.some((n) => n.endsWith('_bucket'))) labels.add('le');
      for (const l of groupingLabels(expr)) if (!labels.has(l)) problems.push(`${where}: groups by "${l}", which ${names.join(', ')} do not have`);
    }
    expect(problems).toEqual([]);
  });
});
