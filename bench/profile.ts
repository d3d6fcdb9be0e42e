import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';

/**
 * `--profile DIR`: a V8 CPU profile of this process covering only the timed drain (not setup or enqueueing),
 * written as DIR/<workload>.cpuprofile (open it in Chrome DevTools). Meaningful with in-process workers.
 */
export async function profiled<T>(dir: string | null, name: string, fn: () => Promise<T>): Promise<T> {
  if (!dir) return fn();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(dir, `${name}-${Date.now().toString(36)}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}
