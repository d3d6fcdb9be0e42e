import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Measurement, Workload, WorkloadContext } from './workload.ts';

/** Workload modules other features contribute; each is optional and skipped (with a note) when absent. */
const OPTIONAL = [
  { name: 'affinity', file: 'affinity.ts', exportName: 'benchAffinity' },
  { name: 'push', file: 'push.ts', exportName: 'benchPush' },
  { name: 'holds', file: 'holds.ts', exportName: 'benchHolds' },
  { name: 'grown-books', file: 'grown-books.ts', exportName: 'benchGrownBooks' },
  { name: 'scale-out', file: 'scale-out.ts', exportName: 'benchScaleOut' },
] as const;

export interface LoadedWorkload {
  name: string;
  run: Workload;
}

export async function loadOptionalWorkloads(log: (m: string) => void): Promise<{ loaded: LoadedWorkload[]; skipped: string[] }> {
  const loaded: LoadedWorkload[] = [];
  const skipped: string[] = [];
  for (const w of OPTIONAL) {
    const path = join(import.meta.dirname, w.file);
    if (!existsSync(path)) {
      skipped.push(`${w.name} (bench/${w.file} not present)`);
      continue;
    }
    try {
      const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
      const fn = mod[w.exportName];
      if (typeof fn !== 'function') throw new Error(`it does not export ${w.exportName}()`);
      loaded.push({ name: w.name, run: fn as Workload });
    } catch (err) {
      skipped.push(`${w.name} (bench/${w.file}: ${(err as Error).message.split('\n')[0]})`);
      log(`skipping ${w.name}: ${(err as Error).message}`);
    }
  }
  return { loaded, skipped };
}

/**
 * Runs one optional workload once. Its author decides what it measures; we accept a Measurement, a list of
 * them, or a bare number (taken as ops/s) — the modules are written in parallel with this harness.
 */
export async function runOptional(w: LoadedWorkload, ctx: WorkloadContext): Promise<Measurement[]> {
  const out = await w.run(ctx);
  const list = Array.isArray(out) ? out : [out];
  return list.map((m, i) => normalise(w.name, m as unknown, i));
}

function normalise(module: string, m: unknown, i: number): Measurement {
  if (typeof m === 'number') return { name: i === 0 ? module : `${module}-${i}`, rate: m, unit: 'ops/s' };
  const r = (m ?? {}) as Record<string, unknown>;
  const rate = [r.rate, r.perSecond, r.per_second, r.opsPerSec, r.ops_per_s, r.mutations_per_s, r.throughput].find((v) => typeof v === 'number');
  if (typeof rate !== 'number') throw new Error(`${module}: a result without a numeric rate: ${JSON.stringify(m)}`);
  const name = typeof r.name === 'string' ? (r.name.startsWith(module) ? r.name : `${module}-${r.name}`) : i === 0 ? module : `${module}-${i}`;
  return {
    name,
    rate,
    unit: typeof r.unit === 'string' ? r.unit : 'ops/s',
    count: typeof r.count === 'number' ? r.count : undefined,
    seconds: typeof r.seconds === 'number' ? r.seconds : undefined,
    ok: typeof r.ok === 'boolean' ? r.ok : undefined,
    notes: typeof r.notes === 'string' ? r.notes : undefined,
    ...(typeof r.detail === 'string' ? { detail: r.detail } : {}),
    ...(typeof r.workerCpuMsPerJob === 'number' ? { workerCpuMsPerJob: r.workerCpuMsPerJob } : {}),
    ...(typeof r.cpuMsPerJob === 'number' ? { cpuMsPerJob: r.cpuMsPerJob } : {}),
    ...(typeof r.pgCpuMsPerJob === 'number' ? { pgCpuMsPerJob: r.pgCpuMsPerJob } : {}),
    ...(typeof r.redisCpuMsPerJob === 'number' ? { redisCpuMsPerJob: r.redisCpuMsPerJob } : {}),
    ...(r.versus === null || typeof r.versus === 'string' ? { versus: r.versus as string | null } : {}),
    ...(typeof r.skipped === 'string' ? { skipped: r.skipped } : {}),
  };
}
