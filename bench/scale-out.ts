// Issue 13 item 7 — scale-out, checked where it can be: the uniform charge workload drained by 1, then 2 (…)
// `tally start --role worker` processes (bench/worker-set.ts), each count on a fresh world, and where the CPU
// went: the worker processes, the PostgreSQL backends and Redis, as cores busy during the drain. On one host they
// all share its cores, so this says what limits a second process here, not what a second host would give.
//   npm run bench -- --only scale-out [--jobs N] [--runs N]
import { cpus } from 'node:os';
import { drainCharges } from './grown-books.ts';
import type { Measurement, WorkloadContext } from './workload.ts';

/** Worker process counts compared, in order; the first is the reference. */
const PROCS = [1, 2];

export async function benchScaleOut(ctx: WorkloadContext): Promise<Measurement[]> {
  const { opts, run, log } = ctx;
  const out: Measurement[] = [];
  const rates = new Map<number, number>();
  for (const procs of PROCS) {
    const world = await ctx.createWorld(`scale_${procs}`);
    try {
      const m = await drainCharges({ ...opts, procs }, world, 'single', `s${procs}-${run}`, log, true);
      rates.set(procs, m.rate);
      const cores = (msPerJob: number | undefined) => ((msPerJob ?? 0) * (m.count ?? 0)) / ((m.seconds ?? 1) * 1000);
      const perJob = (m.workerCpuMsPerJob ?? 0) + (m.pgCpuMsPerJob ?? 0) + (m.redisCpuMsPerJob ?? 0);
      // With every component on this host's cores, it cannot go faster than cores / CPU per charge.
      const share =
        `cores busy: workers ${cores(m.workerCpuMsPerJob).toFixed(2)}, PostgreSQL ${cores(m.pgCpuMsPerJob).toFixed(2)}, Redis ${cores(m.redisCpuMsPerJob).toFixed(2)}` +
        ` of ${cpus().length}; CPU per charge ${perJob.toFixed(3)} ms (workers ${(m.workerCpuMsPerJob ?? 0).toFixed(3)}, PostgreSQL ${(m.pgCpuMsPerJob ?? 0).toFixed(3)}, Redis ${(m.redisCpuMsPerJob ?? 0).toFixed(3)})` +
        ` → this host's CPU ceiling ≈ ${Math.round((cpus().length * 1000) / perJob)}/s`;
      out.push({ ...m, name: `scale-out-${procs}proc`, detail: `${procs} × tally start --role worker; ${share}` });
      log(`scale-out: ${procs} worker process(es): ${Math.round(m.rate)}/s; ${share}`);
    } finally {
      await world.drop();
    }
  }
  const base = rates.get(PROCS[0]!)!;
  for (const procs of PROCS.slice(1)) {
    out.push({ name: `scale-out-${procs}v${PROCS[0]}`, rate: (100 * rates.get(procs)!) / base, unit: `% of ${PROCS[0]} process` });
  }
  return out;
}
