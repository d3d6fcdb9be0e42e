import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { parseEnv } from '../../src/config/env.ts';
import { startProcess, type Started } from '../../src/cli/process.ts';
import { createTallyClient, type TallyClient } from '../../src/client/index.ts';
import { TallyProducer } from '../../src/producers/index.ts';
import type { RoleName } from '../../src/roles.ts';
import { API_TOKEN, ADMIN_TOKEN, REDIS_URL, type TestWorld } from './env.ts';

export const ROOT = join(import.meta.dirname, '..', '..');

/** tally running in this test process (all roles unless told), on a free port. */
export interface InProcessTally {
  started: Started;
  base: string;
  producer: TallyProducer;
  http(method: string, path: string, body?: unknown, token?: string | null): Promise<{ status: number; body: any; headers: Record<string, string> }>;
  /** The typed client (tally/client) with the API token, and one with the admin token. */
  client: TallyClient;
  admin: TallyClient;
  stop(): Promise<void>;
}

export async function startTally(world: TestWorld, roles: RoleName[] = ['api', 'worker', 'scheduler'], extraEnv: Record<string, string> = {}): Promise<InProcessTally> {
  const env = parseEnv({ ...world.childEnv, ...extraEnv });
  const started = await startProcess(env, new Set(roles));
  const base = `http://127.0.0.1:${started.port ?? 0}`;
  const producer = new TallyProducer({ redis: REDIS_URL, prefix: env.TALLY_PREFIX });
  return {
    started,
    base,
    producer,
    http: (method, path, body, token = API_TOKEN) => httpJson(base, method, path, body, token),
    client: createTallyClient({ baseUrl: base, token: API_TOKEN }),
    admin: createTallyClient({ baseUrl: base, token: ADMIN_TOKEN }),
    async stop() {
      await producer.close();
      await started.stop();
    },
  };
}

export async function httpJson(base: string, method: string, path: string, body?: unknown, token: string | null = API_TOKEN) {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed as any, headers: Object.fromEntries(res.headers) as Record<string, string> };
}

export { ADMIN_TOKEN, API_TOKEN };

/** `tally …` as a child process joined to the test world (for multi-process and crash tests). */
export function spawnTally(world: TestWorld, args: string[], extraEnv: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [join(ROOT, 'bin', 'tally.mjs'), ...args], {
    env: { ...process.env, ...world.childEnv, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
