import type { Queue } from 'bullmq';
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
  /** Older name of workerCpuMs, kept for the workload modules written against it. */
  cpuMs: number;
  failed: number;
  failedReasons: string[];
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
  const w0 = workerCpu();
  const t0 = performance.now();
  await queue.resume();
  await waitDrained(queue, timeoutMs);
  const seconds = (performance.now() - t0) / 1000;
  const workerCpuMs = workerCpu() - w0;
  const pgCpuMs = cpuBetween(pg0, await pgCpu());
  const failed = await queue.getFailedCount();
  const failedReasons = failed > 0 ? (await queue.getFailed(0, 2)).map((j) => j.failedReason) : [];
  return { seconds, workerCpuMs, pgCpuMs, cpuMs: workerCpuMs, failed, failedReasons };
}
