import { randomBytes } from 'node:crypto';
import type { Env } from '../config/env.ts';
import { applyConfig, readConfigFile } from '../config/store.ts';
import { createContext, type AppContext } from '../context.ts';
import { createDb } from '../db/client.ts';
import { ensureDatabase, migrate } from '../db/migrate.ts';
import { createLogger } from '../log.ts';
import { checkEvictionPolicy } from '../redis.ts';
import { startTracing } from '../telemetry/tracing.ts';
import { ROLE_NAMES, startRoles, type RoleName } from '../roles.ts';
import { UsageError } from './registry.ts';

export async function withDb<T>(env: Env, fn: (sql: ReturnType<typeof createDb>) => Promise<T>): Promise<T> {
  const sql = createDb(env.DATABASE_URL, { max: 2 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export async function runMigrations(env: Env): Promise<{ created: boolean; applied: string[]; current: number }> {
  const created = await ensureDatabase(env.DATABASE_URL).catch(() => false); // no CREATE DATABASE right: use it as is
  const summary = await withDb(env, (sql) => migrate(sql));
  return { created, ...summary };
}




/** Dev mode fills in missing secrets with generated ones and says so; production refuses to start without them. */
export function withSecrets(env: Env): { env: Env; generated: Record<string, string> } {
  const generated: Record<string, string> = {};
  const names = ['TALLY_API_TOKEN', 'TALLY_ADMIN_TOKEN', 'TALLY_WS_SECRET', 'TALLY_PAYMENT_SECRET'] as const;
  const missing = names.filter((n) => !env[n]);
  if (missing.length === 0) return { env, generated };
  if (!env.TALLY_DEV) {
    const required = missing.filter((n) => n === 'TALLY_API_TOKEN' || n === 'TALLY_ADMIN_TOKEN');
    if (required.length > 0) {
      throw new UsageError(`refusing to start without ${required.join(' and ')} (set them, or TALLY_DEV=1 for generated dev tokens)`);
    }
    return { env, generated };
  }
  const next: Record<string, unknown> = { ...env };
  for (const n of missing) next[n] = generated[n] = `dev-${randomBytes(18).toString('base64url')}`;
  return { env: Object.freeze(next) as Env, generated };
}

export function parseRoles(value: string | undefined): Set<RoleName> {
  if (!value || value === 'all') return new Set(ROLE_NAMES);
  const roles = value.split(',').map((r) => r.trim());
  for (const r of roles) if (!ROLE_NAMES.includes(r as RoleName)) throw new UsageError(`unknown role "${r}" (all, ${ROLE_NAMES.join(', ')})`);
  return new Set(roles as RoleName[]);
}

export interface Started {
  ctx: AppContext;
  port?: number;
  stop(): Promise<void>;
}

export async function startProcess(env: Env, roles: Set<RoleName>): Promise<Started> {
  const log = createLogger(env.LOG_LEVEL, 'tally', env.TALLY_LOG_FORMAT);
  const tracing = startTracing(env); // before any Queue or Worker exists: they read it when made
  const ctx = createContext(env, log);
  // Not awaited: with Redis unreachable at start the process still comes up and says so (/healthz 503 naming Redis),
  // as it does for PostgreSQL; the check answers once Redis does.
  void checkEvictionPolicy(ctx.redis).then((eviction) => eviction && log.warn(eviction));
  if (env.TALLY_CONFIG) {
    const summary = await applyConfig(ctx.sql, await readConfigFile(env.TALLY_CONFIG));
    log.info({ file: env.TALLY_CONFIG, ...summary }, 'config applied at start');
  }
  const running = await startRoles(ctx, roles);
  log.info({ roles: [...roles], port: running.port, prefix: env.TALLY_PREFIX }, 'tally started');
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('shutting down');
      await running.close();
      await ctx.close();
      await tracing.close();
    })());
  return { ctx, port: running.port, stop };
}

/**
 * Catches the first SIGTERM/SIGINT from now on. Call it before start-up: a signal that arrives while the process is
 * still starting (PM2 stopping a process it just launched) is kept and acted on once started, instead of killing
 * the process by the default action half-way (it used to be caught only after "tally started" was logged).
 */
export function catchSignals(): Promise<string> {
  return new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
}

/** Runs until the signal `catchSignals` caught, then stops taking work, finishes what is in flight and exits 0. */
export async function runUntilSignal(started: Started, signal: Promise<string>): Promise<number> {
  const received = await signal;
  started.ctx.log.info({ signal: received }, 'signal received');
  return new Promise<number>((resolve) => {
    const force = setTimeout(() => resolve(1), 30_000);
    force.unref();
    void started.stop().then(() => resolve(0), () => resolve(1));
  });
}
