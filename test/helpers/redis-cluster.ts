import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './tally.ts';

const run = promisify(execFile);

export interface LocalCluster {
  /** REDIS_URL listing every node: what tally reads as a cluster. */
  url: string;
  ports: number[];
  stop(): Promise<void>;
}

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer().once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Three free ports (and their cluster bus ports, +10000) in a random range. */
async function freePorts(n: number): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 25_000);
    const ports = Array.from({ length: n }, (_, i) => base + i);
    const all = await Promise.all(ports.flatMap((p) => [isFree(p), isFree(p + 10_000)]));
    if (all.every(Boolean)) return ports;
  }
  throw new Error('no free ports for a Redis cluster');
}

/**
 * A throwaway Redis Cluster of three masters (no replicas) from the redis-server and redis-cli that
 * scripts/ensure-services.sh installs: its own ports, its own directory, gone after stop().
 */
export async function startLocalCluster(): Promise<LocalCluster> {
  const ports = await freePorts(3);
  const dir = await mkdtemp(join(tmpdir(), 'tally-cluster-'));
  const procs: ChildProcess[] = ports.map((port) =>
    spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
      '--cluster-config-file', `nodes-${port}.conf`, '--dir', dir, '--save', '', '--appendonly', 'no',
    ], { stdio: 'ignore' }),
  );
  const stop = async () => {
    for (const p of procs) p.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      await waitFor(`redis-server on ${port}`, async () => (await run('redis-cli', ['-p', String(port), 'ping']).then((r) => r.stdout.trim() === 'PONG', () => false)) || undefined, 10_000, 50);
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (const port of ports) {
      await waitFor(`cluster state ok on ${port}`, async () => (await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).stdout.includes('cluster_state:ok') || undefined, 20_000, 100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `redis://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, ports, stop };
}
