import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/**
 * The bench's hooks inside a worker child process (bench/tally-worker.ts, bench/baseline-worker.ts), driven over
 * the IPC channel `fork` opens: a sample of its memory, CPU and event-loop delay, and a V8 CPU profile of a chosen
 * span (the timed drain) written to a file. Nothing runs until the parent asks, so an unsampled child costs nothing.
 */
export type ProbeRequest =
  | { id: number; op: 'sample' }
  | { id: number; op: 'profile-start' }
  | { id: number; op: 'profile-stop'; file: string };

export interface ProbeSample {
  /** Wall clock of the sample (ms since the epoch). */
  at: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** This process's CPU so far (user + system), ms. */
  cpuMs: number;
  /** Event-loop delay since the previous sample (ms); null on the first one. */
  eld: { p50: number; p99: number; max: number; mean: number } | null;
}

export type ProbeReply = { id: number; ok: true; sample?: ProbeSample } | { id: number; ok: false; error: string };

export function installChildProbe(): void {
  if (!process.send) return; // not forked by the bench: nothing to answer
  let loop: IntervalHistogram | null = null;
  let session: Session | null = null;
  const reply = (r: ProbeReply) => process.send?.(r);
  process.on('message', (msg: ProbeRequest) => {
    void (async () => {
      try {
        if (msg.op === 'sample') {
          const cpu = process.cpuUsage();
          const mem = process.memoryUsage();
          let eld: ProbeSample['eld'] = null;
          if (loop) {
            eld = { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6, mean: loop.mean / 1e6 };
            loop.reset();
          } else {
            // 10 ms resolution: the histogram's own timer must not be what it measures.
            loop = monitorEventLoopDelay({ resolution: 10 });
            loop.enable();
          }
          reply({ id: msg.id, ok: true, sample: { at: Date.now(), rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, cpuMs: (cpu.user + cpu.system) / 1000, eld } });
        } else if (msg.op === 'profile-start') {
          session = new Session();
          session.connect();
          await session.post('Profiler.enable');
          await session.post('Profiler.start');
          reply({ id: msg.id, ok: true });
        } else if (msg.op === 'profile-stop') {
          if (!session) throw new Error('no profile running');
          const { profile } = await session.post('Profiler.stop');
          writeFileSync(msg.file, JSON.stringify(profile));
          session.disconnect();
          session = null;
          reply({ id: msg.id, ok: true });
        }
      } catch (err) {
        reply({ id: msg.id, ok: false, error: (err as Error).message });
      }
    })();
  });
  // The channel keeps the child alive; it should live exactly as long as its workers do.
  process.channel?.unref();
  // The bench died (or was killed) without stopping us: stop like on SIGTERM rather than work on as an orphan.
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
