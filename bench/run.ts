// `npm run bench` — issues 2 and 13: tally's ledger workers (one job per event, and batch jobs) against three
// baselines measured in the same run on the same Redis and PostgreSQL — (a) the best no-op BullMQ configuration,
// (b) a naive transaction per job, (c) pgbench — plus, when asked, latency (--latency) and a soak (--soak).
// `npm run bench -- --help` for the options; docs/benchmarks.md for the method and results.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import postgres from 'postgres';
import { Redis } from 'ioredis';
import { benchBaseline, benchCeiling, type CeilingState } from './baselines.ts';
import { loadOptionalWorkloads, runOptional } from './extras.ts';
import { parseBenchOptions, wants, type BenchOptions } from './options.ts';
import { benchPgbench, hasPgbench } from './pgbench.ts';
import { benchLatency } from './latency.ts';
import { median, renderReport, summarise } from './report.ts';
import { benchSoak } from './soak.ts';
import { benchTallyBatch } from './tally-batch.ts';
import { benchTallyCharges } from './tally-charges.ts';
import type { Measurement } from './workload.ts';
import { createBenchWorld, dropLiveWorlds } from './world.ts';

const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

async function describeMachine(opts: BenchOptions): Promise<Record<string, string>> {
  const pg = postgres(`${opts.pgBase}/postgres`, { max: 1, onnotice: () => {} });
  const redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: 3 });
  try {
    const [v] = await pg<{ server_version: string }[]>`SHOW server_version`;
    const info = await redis.info('server');
    let commit = 'unknown';
    try {
      commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: import.meta.dirname, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    } catch {
      // not a git checkout
    }
    return {
      machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}`,
      versions: `node ${process.version}, PostgreSQL ${v?.server_version}, Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? '?'}`,
      commit,
    };
  } finally {
    await pg.end({ timeout: 5 });
    redis.disconnect();
  }
}

function cpuLine(m: Measurement): string {
  const worker = m.workerCpuMsPerJob ?? m.cpuMsPerJob;
  if (worker === undefined) return '';
  const pg = m.pgCpuMsPerJob !== undefined ? `, PostgreSQL ${m.pgCpuMsPerJob.toFixed(3)} ms` : '';
  const redis = m.redisCpuMsPerJob !== undefined ? `, Redis ${m.redisCpuMsPerJob.toFixed(3)} ms` : '';
  return `; CPU/job: workers ${worker.toFixed(3)} ms${pg}${redis}`;
}

async function main(): Promise<number> {
  const opts = parseBenchOptions(process.argv.slice(2));
  const machine = await describeMachine(opts);
  const pgbench = await hasPgbench();
  const { loaded, skipped } = await loadOptionalWorkloads(log);
  if (!pgbench) skipped.push('pgbench (not installed: apt-get install postgresql-contrib)');

  const all: Measurement[] = [];
  const record = (m: Measurement) => {
    all.push(m);
    if (m.skipped) return log(`  ${m.name}: skipped: ${m.skipped}`);
    log(`  ${m.name}: ${m.rate >= 100 ? Math.round(m.rate) : m.rate.toFixed(1)} ${m.unit}${m.count !== undefined && m.seconds ? ` (${m.count} in ${m.seconds.toFixed(2)} s)` : ''}${m.config ? ` [${m.config}]` : ''}${cpuLine(m)}${m.detail ? `; ${m.detail}` : ''}${m.ok === false ? ` FAILED ${m.notes}` : ''}`);
  };
  const guarded = async (name: string, fn: () => Promise<Measurement | Measurement[]>) => {
    try {
      const out = await fn();
      for (const m of Array.isArray(out) ? out : [out]) record(m);
    } catch (err) {
      log(`${name} failed: ${(err as Error).stack ?? err}`);
      record({ name, rate: 0, unit: 'ops/s', ok: false, notes: (err as Error).message.split('\n')[0] });
    }
  };
  const ceiling: CeilingState = { probes: [] };
  // Interleaved per run, so a burst of noise from elsewhere on the box lands on every system alike.
  for (let run = 1; run <= opts.runs; run++) {
    log(`run ${run}/${opts.runs}`);
    if (wants(opts, 'noop')) record(await benchCeiling(opts, run, ceiling, log));
    for (const variant of ['uniform', 'hot'] as const) {
      if (wants(opts, `tally-${variant}`)) record(await benchTallyCharges(opts, variant, run, log));
      if (wants(opts, `naive-${variant}`)) record(await benchBaseline(opts, 'naive', variant, run, log));
      if (wants(opts, `batch-${variant}`)) await guarded(`batch-${variant}`, () => benchTallyBatch(opts, variant, run, log));
    }
    if (pgbench && wants(opts, 'pgbench')) record(await benchPgbench(opts, run));
    for (const w of loaded) {
      if (!wants(opts, w.name)) continue;
      try {
        for (const m of await runOptional(w, { opts, run, createWorld: (label) => createBenchWorld(opts, label), log })) record(m);
      } catch (err) {
        log(`${w.name} failed: ${(err as Error).stack ?? err}`);
        record({ name: w.name, rate: 0, unit: 'ops/s', ok: false, notes: (err as Error).message.split('\n')[0] });
      }
    }
  }

  // The long parts, once: latency at fractions of the single-event peak of this run, and the soak.
  if (wants(opts, 'latency')) {
    let uniform = all.filter((m) => m.name === 'tally-uniform' && !m.skipped).map((m) => m.rate);
    if (uniform.length === 0) {
      log('latency: measuring the single-event peak (tally-uniform) first');
      const m = await benchTallyCharges(opts, 'uniform', 1, log);
      record(m);
      uniform = [m.rate];
    }
    log(`latency: peak ${Math.round(median(uniform))}/s (tally-uniform, median of this run)`);
    await guarded('latency', () => benchLatency(opts, median(uniform), 1, log));
  }
  if (wants(opts, 'soak')) {
    log(`soak: ${opts.soakEvents.toLocaleString('en-US')} events through one worker process`);
    await guarded('soak', () => benchSoak(opts, log));
  }

  const rows = summarise(all);
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const report = renderReport(rows, opts, { command, ...machine, date: new Date().toISOString() }, skipped);
  process.stdout.write(`\n${report}\n`);
  if (opts.out) writeFileSync(opts.out, `${report}\n`);
  return rows.some((r) => r.ok === false) ? 1 : 0;
}

// Interrupted: drop the databases and Redis keys of the measurement in progress, then stop.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void dropLiveWorlds().finally(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
