import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Worker } from 'bullmq';
import { ConfigCache } from '../src/config/store.ts';
import { createDb } from '../src/db/client.ts';
import { createLogger } from '../src/log.ts';
import { QUEUE } from '../src/queues/common.ts';
import { createRedis } from '../src/redis.ts';
import { startLedgerWorkers } from '../src/workers/ledger-worker.ts';
import { WORKER_DEFAULTS } from '../src/workers/worker-deps.ts';
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
  close(): Promise<void>;
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
 * Workers in `n` child processes: tally as operators run it (`tally start --role worker`), the baselines
 * through bench/baseline-worker.ts with the same concurrency and options.
 */
export function startChildren(cfg: WorkerConfig, n: number, tallyEnv: Record<string, string>): WorkerSet {
  const children: ChildProcess[] = [];
  for (let i = 0; i < n; i++) {
    const child =
      cfg.kind === 'tally'
        ? spawn(process.execPath, [join(ROOT, 'bin', 'tally.mjs'), 'start', '--role', 'worker'], {
            env: { ...process.env, ...tallyEnv },
            stdio: ['ignore', 'ignore', 'inherit'],
          })
        : spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'baseline-worker.ts'), JSON.stringify(cfg)], {
            env: process.env,
            stdio: ['ignore', 'ignore', 'inherit'],
          });
    children.push(child);
  }
  return {
    cpuMs: () => pidsCpu(children.map((c) => c.pid ?? 0).filter(Boolean)),
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
