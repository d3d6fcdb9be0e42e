import type { BenchOptions } from './options.ts';
import type { Measurement } from './workload.ts';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Row {
  name: string;
  unit: string;
  rates: number[];
  median: number;
  ok: boolean | undefined;
  notes: string[];
}

const LABELS: Record<string, string> = {
  'tally-uniform': 'tally, uniform (10k users)',
  'tally-hot': 'tally, hot (one user)',
  noop: '(a) BullMQ no-op jobs',
  'naive-uniform': '(b) naive tx/job, uniform',
  'naive-hot': '(b) naive tx/job, hot',
  pgbench: '(c) pgbench tpcb-like',
};

/** Groups every run's measurements by name, in first-seen order. */
export function summarise(all: Measurement[]): Row[] {
  const rows = new Map<string, Row>();
  for (const m of all) {
    let row = rows.get(m.name);
    if (!row) rows.set(m.name, (row = { name: m.name, unit: m.unit, rates: [], median: 0, ok: undefined, notes: [] }));
    row.rates.push(m.rate);
    if (m.ok !== undefined) row.ok = (row.ok ?? true) && m.ok;
    if (m.notes) row.notes.push(m.notes);
  }
  for (const row of rows.values()) row.median = median(row.rates);
  return [...rows.values()];
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1));
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? `${(a / b).toFixed(2)}×` : '');

/** The markdown report: settings, the table (medians; ratios vs (a) and vs (b) of the same distribution), targets. */
export function renderReport(rows: Row[], opts: BenchOptions, env: Record<string, string>, skipped: string[]): string {
  const by = new Map(rows.map((r) => [r.name, r.median]));
  const noop = by.get('noop');
  const naiveFor = (name: string) => by.get(name.endsWith('-hot') ? 'naive-hot' : 'naive-uniform');
  const lines = [
    `| workload | median | unit | runs | vs (a) | vs (b) | verified |`,
    `|---|---:|---|---|---:|---:|---|`,
  ];
  for (const r of rows) {
    const vsB = r.name.startsWith('tally-') ? ratio(r.median, naiveFor(r.name)) : '';
    const verified = r.ok === undefined ? '' : r.ok ? 'ok' : ['**FAILED**', ...r.notes].join(' ');
    lines.push(`| ${LABELS[r.name] ?? r.name} | ${fmt(r.median)} | ${r.unit} | ${r.rates.map(fmt).join(', ')} | ${r.name === 'noop' ? '' : ratio(r.median, noop)} | ${vsB} | ${verified} |`);
  }
  const targets: string[] = [];
  for (const v of ['uniform', 'hot'] as const) {
    const t = by.get(`tally-${v}`);
    if (t === undefined) continue;
    if (noop) targets.push(`- tally ${v} ≥ 0.6× (a): ${(t / noop).toFixed(2)}× — ${t >= 0.6 * noop ? 'met' : '**not met**'}`);
    const b = by.get(`naive-${v}`);
    const want = v === 'uniform' ? 3 : 5;
    if (b) targets.push(`- tally ${v} ≥ ${want}× (b): ${(t / b).toFixed(2)}× — ${t >= want * b ? 'met' : '**not met**'}`);
  }
  const settings = [
    `jobs per drain ${opts.jobs.toLocaleString('en-US')}, users ${opts.users.toLocaleString('en-US')}, runs ${opts.runs}`,
    `workers ${opts.procs === 0 ? 'in the bench process' : `in ${opts.procs} child process(es)`}, concurrency ${opts.concurrency}, batch max ${opts.batchMax}, batch parallel ${opts.batchParallel}, pool ${opts.pool}, naive concurrency ${opts.naiveConcurrency}`,
    ...(opts.pgSettings.length ? [`PostgreSQL settings of the bench databases: ${opts.pgSettings.map(([k, v]) => `${k}=${v}`).join(', ')}`] : []),
    `pgbench -c ${opts.pgbenchClients} -j ${opts.pgbenchThreads} -T ${opts.pgbenchSeconds} -b tpcb-like, scale ${opts.pgbenchScale}`,
    ...Object.entries(env).map(([k, v]) => `${k}: ${v}`),
  ];
  return [
    ...settings.map((s) => `- ${s}`),
    '',
    ...lines,
    '',
    ...(targets.length ? ['Targets (issue 2):', ...targets, ''] : []),
    ...(skipped.length ? [`Skipped optional workloads: ${skipped.join(', ')}`, ''] : []),
  ].join('\n');
}
