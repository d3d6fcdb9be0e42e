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
  /** CPU per job, medians over the runs that measured it (ms). */
  cpu?: { worker: number; pg?: number; redis?: number };
  /** Compared with this row in the "vs (a)" column (null: with nothing — latencies, spreads). */
  versus: string | null;
  config?: string;
  detail?: string;
  /** Every run skipped it: why. */
  skipped?: string;
}

const LABELS: Record<string, string> = {
  'tally-uniform': 'tally, uniform (10k users)',
  'tally-hot': 'tally, hot (one user)',
  'batch-uniform': 'tally batched, uniform (10k users)',
  'batch-hot': 'tally batched, hot (one user)',
  noop: '(a) BullMQ no-op jobs (best config)',
  'naive-uniform': '(b) naive tx/job, uniform',
  'naive-hot': '(b) naive tx/job, hot',
  pgbench: '(c) pgbench tpcb-like',
  soak: 'soak: one worker process',
  'soak-rss-drift': 'soak: worker RSS drift after warm-up',
  'soak-rss-spread': 'soak: worker RSS max−min after warm-up',
  'soak-eld-p99': 'soak: worker event-loop delay p99',
};

/** Groups every run's measurements by name, in first-seen order. */
export function summarise(all: Measurement[]): Row[] {
  const rows = new Map<string, Row>();
  const cpus = new Map<string, { worker: number[]; pg: number[]; redis: number[] }>();
  for (const m of all) {
    let row = rows.get(m.name);
    // A latency or a percentage has no ratio against a rate: compared with nothing unless the row says otherwise.
    const versus = m.versus !== undefined ? m.versus : /^(ms|%)/.test(m.unit) ? null : 'noop';
    if (!row) rows.set(m.name, (row = { name: m.name, unit: m.unit, rates: [], median: 0, ok: undefined, notes: [], versus }));
    if (m.config) row.config = m.config;
    if (m.detail) row.detail = m.detail;
    if (m.skipped) {
      row.skipped = m.skipped;
      continue;
    }
    row.rates.push(m.rate);
    if (m.ok !== undefined) row.ok = (row.ok ?? true) && m.ok;
    if (m.notes) row.notes.push(m.notes);
    const worker = m.workerCpuMsPerJob ?? m.cpuMsPerJob;
    if (worker !== undefined) {
      let c = cpus.get(m.name);
      if (!c) cpus.set(m.name, (c = { worker: [], pg: [], redis: [] }));
      c.worker.push(worker);
      if (m.pgCpuMsPerJob !== undefined) c.pg.push(m.pgCpuMsPerJob);
      if (m.redisCpuMsPerJob !== undefined) c.redis.push(m.redisCpuMsPerJob);
    }
  }
  for (const row of rows.values()) {
    if (row.rates.length > 0) {
      row.median = median(row.rates);
      row.skipped = undefined; // measured in some run: the row stands
    }
    const c = cpus.get(row.name);
    if (c) row.cpu = { worker: median(c.worker), pg: c.pg.length ? median(c.pg) : undefined, redis: c.redis.length ? median(c.redis) : undefined };
  }
  return [...rows.values()];
}

const fmt = (n: number) => (Number.isNaN(n) ? '—' : n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1));
const ms = (n: number | undefined) => (n === undefined ? '' : n.toFixed(3));
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? `${(a / b).toFixed(2)}×` : '');
const cpuTotal = (c: Row['cpu']) => (c ? c.worker + (c.pg ?? 0) + (c.redis ?? 0) : undefined);
const labelOf = (name: string) => LABELS[name] ?? name;

/**
 * The markdown report: settings; the table (medians; each rate against the no-op ceiling (a) of the same run and,
 * for tally's single-event rows, against the naive worker (b) of the same distribution); CPU per job against (a);
 * which configuration won the ceiling; the targets of issues 2 and 13.
 */
export function renderReport(rows: Row[], opts: BenchOptions, env: Record<string, string>, skipped: string[]): string {
  const by = new Map(rows.filter((r) => !r.skipped).map((r) => [r.name, r.median]));
  const byRow = new Map(rows.map((r) => [r.name, r]));
  const noop = by.get('noop');
  const naiveFor = (name: string) => by.get(name.endsWith('-hot') ? 'naive-hot' : 'naive-uniform');
  const lines = [
    `| workload | median | unit | runs | vs (a) | vs (b) | verified |`,
    `|---|---:|---|---|---:|---:|---|`,
  ];
  for (const r of rows) {
    if (r.skipped) {
      lines.push(`| ${labelOf(r.name)} | — | ${r.unit} |  |  |  | skipped: ${r.skipped.replace(/\|/g, '\\|')} |`);
      continue;
    }
    const vsA = r.name === 'noop' || r.versus === null ? '' : ratio(r.median, by.get(r.versus));
    const vsB = r.name.startsWith('tally-') ? ratio(r.median, naiveFor(r.name)) : '';
    const verified = r.ok === undefined ? '' : r.ok ? 'ok' : ['**FAILED**', ...r.notes].join(' ');
    lines.push(`| ${labelOf(r.name)} | ${fmt(r.median)} | ${r.unit} | ${r.rates.map(fmt).join(', ')} | ${vsA} | ${vsB} | ${verified} |`);
  }

  const cpuRows = rows.filter((r) => r.cpu && !r.skipped);
  const noopCpu = cpuTotal(byRow.get('noop')?.cpu);
  const cpu = cpuRows.length
    ? [
        'CPU per job (per event for batched rows), ms, medians — worker process(es), the PostgreSQL backends of the bench database, the Redis server:',
        '',
        '| workload | worker | PostgreSQL | Redis | total | vs (a) |',
        '|---|---:|---:|---:|---:|---:|',
        ...cpuRows.map((r) => `| ${labelOf(r.name)} | ${ms(r.cpu!.worker)} | ${ms(r.cpu!.pg)} | ${ms(r.cpu!.redis)} | ${ms(cpuTotal(r.cpu))} | ${r.name === 'noop' ? '' : ratio(cpuTotal(r.cpu), noopCpu)} |`),
        '',
      ]
    : [];

  const ceiling = byRow.get('noop');
  const ceilingText = ceiling?.config ? [`No-op ceiling (a): the best of the probed configurations was **${ceiling.config}** (${ceiling.detail ?? ''}).`, ''] : [];

  const targets: string[] = [];
  const target = (label: string, value: number | undefined, base: number | undefined, want: number) => {
    if (value === undefined || !base) return;
    targets.push(`- ${label} ≥ ${want}×: ${(value / base).toFixed(2)}× — ${value >= want * base ? 'met' : '**not met**'}`);
  };
  for (const v of ['uniform', 'hot'] as const) {
    target(`tally ${v} vs (a)`, by.get(`tally-${v}`), noop, 0.6);
    target(`tally ${v} vs (b)`, by.get(`tally-${v}`), by.get(`naive-${v}`), v === 'uniform' ? 3 : 5);
  }
  for (const v of ['uniform', 'hot'] as const) target(`batched charges ${v} (events/s) vs (a)`, by.get(`batch-${v}`), noop, 3);
  for (const v of ['uniform', 'hot'] as const) if (byRow.get(`batch-${v}`)?.skipped) targets.push(`- batched charges ${v} ≥ 3× (a): not measured (${byRow.get(`batch-${v}`)!.skipped})`);
  const p99 = by.get('latency-p99@50%');
  if (p99 !== undefined) targets.push(`- latency p99 at 50 % of peak < 50 ms: ${p99.toFixed(1)} ms — ${p99 < 50 ? 'met' : '**not met**'}`);
  const drift = by.get('soak-rss-drift');
  if (drift !== undefined) targets.push(`- soak: RSS flat within 10 % after warm-up (median of the last quarter vs the first): ${drift.toFixed(1)} % — ${Math.abs(drift) <= 10 ? 'met' : '**not met**'}`);

  const settings = [
    `jobs per drain ${opts.jobs.toLocaleString('en-US')}, users ${opts.users.toLocaleString('en-US')}, runs ${opts.runs}`,
    `tally and (b): workers ${opts.procs === 0 ? 'in the bench process' : `in ${opts.procs} child process(es)`}, concurrency ${opts.concurrency}, batch max ${opts.batchMax}, batch parallel ${opts.batchParallel}, pool ${opts.pool}, naive concurrency ${opts.naiveConcurrency}`,
    `(a) candidates: own process at concurrency ${opts.noopConcurrencies.join(', ')} and in the bench process at ${opts.concurrency}; probes of ${Math.min(opts.probeJobs, opts.jobs).toLocaleString('en-US')} jobs, the best measured with ${opts.jobs.toLocaleString('en-US')}`,
    `batched rows: ${opts.batchEvents} events per batch job, worker concurrency ${opts.batchConcurrency}`,
    ...(opts.pgSettings.length ? [`PostgreSQL settings of the bench databases: ${opts.pgSettings.map(([k, v]) => `${k}=${v}`).join(', ')}`] : []),
    `pgbench -c ${opts.pgbenchClients} -j ${opts.pgbenchThreads} -T ${opts.pgbenchSeconds} -b tpcb-like, scale ${opts.pgbenchScale}`,
    ...Object.entries(env).map(([k, v]) => `${k}: ${v}`),
  ];
  return [
    ...settings.map((s) => `- ${s}`),
    '',
    ...lines,
    '',
    ...ceilingText,
    ...cpu,
    ...(targets.length ? ['Targets (issues 2 and 13):', ...targets, ''] : []),
    ...(skipped.length ? [`Skipped optional workloads: ${skipped.join(', ')}`, ''] : []),
  ].join('\n');
}
