import type { Queue } from 'bullmq';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { cpuBetween, type CpuSnapshot } from './cpu.ts';

/** Jobs still to be done: everything not yet completed or failed. */
const PENDING_STATES = ['wait', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

export interface BulkJob {
  name: string;
  data: Record<string, unknown>;
  opts?: Record<string, unknown>;
}

/** `addBulk` in chunks: one MULTI of 50,000 jobs would block Redis for everyone else on the box. */
export async function addInChunks<T>(add: (chunk: T[]) => Promise<unknown>, items: T[], chunk = 1000): Promise<void> {
  for (let i = 0; i < items.length; i += chunk) await add(items.slice(i, i + chunk));
}

export async function pendingCount(queue: Queue): Promise<number> {
  const counts = await queue.getJobCounts(...PENDING_STATES);
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 60_000, everyMs = 50): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Waits until `n` workers listen on the queue (BullMQ names their Redis connections after it). */
export async function waitForWorkers(queue: Queue, n: number): Promise<void> {
  await waitUntil(`${n} worker(s) on ${queue.name}`, async () => (await queue.getWorkersCount()) >= n, 120_000, 100);
}

export async function waitDrained(queue: Queue, timeoutMs = 600_000): Promise<void> {
  await waitUntil(`${queue.name} to drain`, async () => (await pendingCount(queue)) === 0, timeoutMs, 20);
}

export interface Drain {
  seconds: number;
  /** CPU the worker process(es) spent during the drain (user + system), in ms. */
  workerCpuMs: number;
  /** CPU the PostgreSQL backends of this world spent during the drain, in ms (0 without a pgCpu probe). */
  pgCpuMs: number;
  /** CPU the Redis server spent during the drain (INFO cpu), in ms: shared with anything else using that Redis. */
  redisCpuMs: number;
  /** This process's event-loop delay during the drain (ms): how long a ready callback — a query's reply — waits. */
  loopDelayMs: { p50: number; p99: number };
  /** Older name of workerCpuMs, kept for the workload modules written against it. */
  cpuMs: number;
  failed: number;
  failedReasons: string[];
}

/** A drain's CPU per job (per event for batched rows): worker, PostgreSQL, Redis — the CPU table's columns. */
export function perJob(d: Drain, jobs: number): { workerCpuMsPerJob: number; pgCpuMsPerJob: number; redisCpuMsPerJob: number } {
  return { workerCpuMsPerJob: d.workerCpuMs / jobs, pgCpuMsPerJob: d.pgCpuMs / jobs, redisCpuMsPerJob: d.redisCpuMs / jobs };
}

/**
 * The timed part: every job is already enqueued in the paused queue and the workers are up and idle;
 * the clock runs from resume until nothing is pending (polled every 20 ms — noise below 1% of a drain).
 */
export interface CpuProbes {
  /** Default: this process's CPU (right for in-process workers). */
  workerCpu?(): number;
  pgCpu?(): Promise<CpuSnapshot>;
}

function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export async function timeDrain(queue: Queue, probes: CpuProbes = {}, timeoutMs = 900_000): Promise<Drain> {
  const workerCpu = probes.workerCpu ?? ownCpuMs;
  const pgCpu = probes.pgCpu ?? (async () => new Map<number, number>());
  const pg0 = await pgCpu();
  const r0 = await redisCpuMs(queue);
  const w0 = workerCpu();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const t0 = performance.now();
  await queue.resume();
  await waitDrained(queue, timeoutMs);
  const seconds = (performance.now() - t0) / 1000;
  loop.disable();
  const loopDelayMs = { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6 };
  const workerCpuMs = workerCpu() - w0;
  const pgCpuMs = cpuBetween(pg0, await pgCpu());
  const redisMs = (await redisCpuMs(queue)) - r0;
  const failed = await queue.getFailedCount();
  const failedReasons = failed > 0 ? (await queue.getFailed(0, 2)).map((j) => j.failedReason) : [];
  return { seconds, workerCpuMs, pgCpuMs, redisCpuMs: redisMs, loopDelayMs, cpuMs: workerCpuMs, failed, failedReasons };
}

/** The Redis server's own CPU so far (user + system, main and background threads), in ms. */
async function redisCpuMs(queue: Queue): Promise<number> {
  const info = String(await ((await queue.backend.client) as unknown as { info(section: string): Promise<string> }).info('cpu'));
  const field = (k: string) => Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1000;
}
