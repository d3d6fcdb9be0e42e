import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Session } from 'node:inspector/promises';
import type { WorkerSet } from './worker-set.ts';

/**
 * `--profile DIR`: a V8 CPU profile covering only the timed drain (not setup or enqueueing), written as
 * DIR/<workload>-<stamp>.cpuprofile (open it in Chrome DevTools, or `node --import tsx bench/profile-summary.ts FILE`).
 * Workers in child processes (the default) are profiled in the child, one file per process
 * (DIR/<workload>-worker<i>-<stamp>.cpuprofile); in-process workers are profiled with the harness around them.
 */
export async function profiled<T>(dir: string | null, name: string, fn: () => Promise<T>, set?: WorkerSet): Promise<T> {
  if (!dir) return fn();
  mkdirSync(dir, { recursive: true });
  const stamp = Date.now().toString(36);
  const probes = set?.probes ?? [];
  if (probes.length > 0) {
    await Promise.all(probes.map((p) => p.profileStart()));
    try {
      return await fn();
    } finally {
      // The child writes the file itself: the path must not depend on its working directory.
      await Promise.all(probes.map((p, i) => p.profileStop(resolve(dir, `${name}-worker${i}-${stamp}.cpuprofile`))));
    }
  }
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(dir, `${name}-${stamp}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}
