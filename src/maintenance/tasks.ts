import type { Env } from '../config/env.ts';
import type { ConfigCache } from '../config/store.ts';
import type { Sql } from '../db/client.ts';
import { runExpire } from './expire.ts';
import { runReconcile } from './reconcile.ts';
import { pruneDeadLetters, retentionOf } from './retention.ts';

export interface MaintenanceDeps {
  sql: Sql;
  configs: ConfigCache;
  /** The process environment (retention settings); absent when a bench or test runs a task directly: defaults. */
  env?: Env;
}

export type MaintenanceTask = (deps: MaintenanceDeps) => Promise<{ task: string }>;

/** Every maintenance task by name: the CLI, the HTTP admin route and the scheduler all run them from here. */
export const MAINTENANCE_TASKS = new Map<string, MaintenanceTask>([
  ['expire', ({ sql, configs }) => runExpire(sql, configs)],
  ['reconcile', ({ sql, env }) => runReconcile(sql, { outboxRetentionHours: retentionOf(env).outboxHours })],
  ['dead-letters', ({ sql, env }) => pruneDeadLetters(sql, retentionOf(env))],
]);

export function registerMaintenanceTask(name: string, task: MaintenanceTask): void {
  MAINTENANCE_TASKS.set(name, task);
}
