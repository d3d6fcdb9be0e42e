import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensureDatabase } from '../src/db/migrate.ts';
import type { BenchOptions } from './options.ts';
import type { Measurement } from './workload.ts';
import { dropDatabase } from './world.ts';

const run = promisify(execFile);

/**
 * Baseline (c): PostgreSQL's own tpcb-like transaction (3 UPDATEs, 1 SELECT, 1 INSERT) at the same client
 * count, on a scratch database. What this server commits per second with nothing in front of it.
 */
export async function benchPgbench(opts: BenchOptions, runNo: number): Promise<Measurement> {
  const dbName = `tally_bench_pgbench_${Date.now().toString(36)}_${runNo}`;
  const url = `${opts.pgBase}/${dbName}`;
  await ensureDatabase(url);
  try {
    await run('pgbench', ['-i', '-q', '-s', String(opts.pgbenchScale), url], { maxBuffer: 1 << 22 });
    const args = ['-c', String(opts.pgbenchClients), '-j', String(opts.pgbenchThreads), '-T', String(opts.pgbenchSeconds), '-b', 'tpcb-like', url];
    const { stdout } = await run('pgbench', args, { maxBuffer: 1 << 22 });
    return { name: 'pgbench', rate: parseTps(stdout), unit: 'tps', seconds: opts.pgbenchSeconds };
  } finally {
    await dropDatabase(opts.pgBase, dbName);
  }
}

/** `tps = 2101.3 (without initial connection time)` (pgbench ≥ 14; older ones print "excluding connections establishing"). */
export function parseTps(output: string): number {
  const m = /tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/.exec(output) ?? /tps = ([\d.]+)/.exec(output);
  if (!m) throw new Error(`pgbench: no tps in its output:\n${output}`);
  return Number(m[1]);
}

export async function hasPgbench(): Promise<boolean> {
  return run('pgbench', ['--version']).then(
    () => true,
    () => false,
  );
}
