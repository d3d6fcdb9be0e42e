import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './tally.ts';

const run = promisify(execFile);

/** A throwaway redis-server of a test's own, to kill and restart: its own port, its own data directory. */
export interface LocalRedis {
  port: number;
  url: string;
  /** SIGKILL: no chance to write anything more (what AOF already holds survives). */
  kill9(): Promise<void>;
  /** Starts it again on the same port and directory (it loads its AOF); resolves once it answers PING. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * redis-server with AOF on (`appendfsync everysec`: every acknowledged write is in the file before the reply, so a
 * SIGKILL of the process loses none of them; only a machine crash could lose the last second), `noeviction` as
 * BullMQ needs, and no RDB snapshots.
 */
export async function startLocalRedis(opts: { aof?: boolean } = {}): Promise<LocalRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'tally-redis-'));
  let proc: ChildProcess | null = null;
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', opts.aof === false ? 'no' : 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction',
  ];
  const ping = async () => (await run('redis-cli', ['-p', String(port), 'ping']).then((r) => r.stdout.trim() === 'PONG', () => false)) || undefined;
  const exited = (p: ChildProcess) => new Promise<void>((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve() : p.once('exit', () => resolve())));
  const handle: LocalRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      proc = spawn('redis-server', args, { stdio: 'ignore' });
      // Loading a large AOF answers LOADING for a while; wait for a real PONG.
      await waitFor(`redis-server on ${port}`, ping, 20_000, 50);
    },
    async kill9() {
      const p = proc;
      proc = null;
      if (!p) return;
      p.kill('SIGKILL');
      await exited(p);
    },
    async stop() {
      await handle.kill9();
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await handle.start();
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return handle;
}
