import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Worker } from 'bullmq';
import { ConfigCache } from '../src/config/store.ts';
import { createDb } from '../src/db/client.ts';
import { createLogger } from '../src/log.ts';
import { QUEUE } from '../src/queues/common.ts';
import { createRedis } from '../src/redis.ts';
import { startLedgerWorkers } from '../src/workers/ledger-worker.ts';
import { WORKER_DEFAULTS } from '../src/workers/worker-deps.ts';
import type { ProbeReply, ProbeRequest, ProbeSample } from './child-probe.ts';
import { pidsCpu } from './cpu.ts';
import { naiveProcessor } from './naive.ts';

export type WorkerKind = 'tally' | 'noop' | 'naive';

/** What a worker process needs to join a bench world; also the argument of bench/baseline-worker.ts. */
export interface WorkerConfig {
  kind: WorkerKind;
  databaseUrl: string;
  redisUrl: string;
  prefix: string;
  concurrency: number;
  batchMax: number;
  batchParallel: number;
  pool: number;
}

export interface WorkerSet {
  /** CPU the workers have used so far, ms (in-process: this whole process, the harness's polling included). */
  cpuMs?(): number;
  /** Child processes only: their probes (bench/child-probe.ts) — RSS, event-loop delay, CPU profiles. */
  probes?: ChildProbe[];
  close(): Promise<void>;
}

/** The parent's end of one child's probe. */
export interface ChildProbe {
  pid: number;
  sample(): Promise<ProbeSample>;
  profileStart(): Promise<void>;
  profileStop(file: string): Promise<void>;
}

function probeOf(child: ChildProcess): ChildProbe {
  let next = 1;
  const waiting = new Map<number, { resolve(r: ProbeReply): void }>();
  child.on('message', (r: ProbeReply) => waiting.get(r.id)?.resolve(r));
  child.once('exit', () => {
    for (const w of waiting.values()) w.resolve({ id: 0, ok: false, error: 'worker process exited' });
  });
  const ask = (req: ProbeRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never): Promise<ProbeReply & { ok: true }> =>
    new Promise((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`worker ${child.pid} did not answer ${req.op} within 60 s`));
      }, 60_000);
      waiting.set(id, {
        resolve(r) {
          clearTimeout(timer);
          waiting.delete(id);
          if (r.ok) resolve(r);
          else reject(new Error(`worker ${child.pid}: ${r.error}`));
        },
      });
      child.send({ ...req, id } as ProbeRequest);
    });
  return {
    pid: child.pid ?? 0,
    sample: async () => (await ask({ op: 'sample' })).sample!,
    profileStart: async () => void (await ask({ op: 'profile-start' })),
    profileStop: async (file) => void (await ask({ op: 'profile-stop', file })),
  };
}

const ROOT = join(import.meta.dirname, '..');

/** Workers of one kind inside this process. */
export function startInProcess(cfg: WorkerConfig): WorkerSet {
  const log = createLogger('warn', `bench-${cfg.kind}`);
  const redis = createRedis(cfg.redisUrl);
  const sql = cfg.kind === 'noop' ? null : createDb(cfg.databaseUrl, { max: cfg.pool });
  let closeWorkers: () => Promise<void>;
  if (cfg.kind === 'tally') {
    const ledger = startLedgerWorkers({
      sql: sql!,
      redis,
      prefix: cfg.prefix,
      configs: new ConfigCache(),
      log,
      concurrency: cfg.concurrency,
      batchMax: cfg.batchMax,
      batchParallel: cfg.batchParallel,
    });
    closeWorkers = () => ledger.close();
  } else {
    // Same queue, same worker options as tally's; only the processor differs.
    const processor = cfg.kind === 'naive' ? naiveProcessor(sql!) : async () => ({ outcome: 'applied' });
    const worker = new Worker(QUEUE.charges, processor, { connection: redis, prefix: cfg.prefix, concurrency: cfg.concurrency, ...WORKER_DEFAULTS });
    worker.on('error', (err) => log.error({ err }, 'worker error'));
    closeWorkers = () => worker.close();
  }
  return {
    cpuMs() {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    },
    async close() {
      await closeWorkers();
      await sql?.end({ timeout: 5 });
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/**
 * Workers in `n` child processes: tally as operators run it (`tally start --role worker`: bench/tally-worker.ts is
 * that start path plus the bench's probe), the baselines through bench/baseline-worker.ts with the same concurrency
 * and options.
 */
export function startChildren(cfg: WorkerConfig, n: number, tallyEnv: Record<string, string>): WorkerSet {
  const children: ChildProcess[] = [];
  for (let i = 0; i < n; i++) {
    const child =
      cfg.kind === 'tally'
        ? fork(join(ROOT, 'bench', 'tally-worker.ts'), [], {
            env: { ...process.env, ...tallyEnv },
            execArgv: ['--import', 'tsx'],
            stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
          })
        : fork(join(ROOT, 'bench', 'baseline-worker.ts'), [JSON.stringify(cfg)], {
            env: process.env,
            execArgv: ['--import', 'tsx'],
            stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
          });
    children.push(child);
  }
  return {
    cpuMs: () => pidsCpu(children.map((c) => c.pid ?? 0).filter(Boolean)),
    probes: children.map(probeOf),
    async close() {
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve();
              c.once('exit', () => resolve());
              c.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}

export function startWorkerSet(cfg: WorkerConfig, procs: number, tallyEnv: Record<string, string>): WorkerSet {
  return procs === 0 ? startInProcess(cfg) : startChildren(cfg, procs, tallyEnv);
}
