import type { AppContext } from './context.ts';
import { buildServer, closeServer } from './http/server.ts';
import { startMaintenanceWorker, startScheduler } from './scheduler.ts';
import { startLedgerWorkers } from './workers/ledger-worker.ts';
import { batchedWorkerDeps } from './workers/worker-deps.ts';
import { workerCreated } from './workers/worker-registry.ts';

export type RoleName = 'api' | 'worker' | 'scheduler';
export const ROLE_NAMES: RoleName[] = ['api', 'worker', 'scheduler'];

export interface Running {
  /** The HTTP port actually bound (when the api role runs). */
  port?: number;
  close(): Promise<void>;
}

/** Extra things a role starts (affinity workers, the push relay…), registered by their modules. */
export type RoleHook = (ctx: AppContext) => Promise<{ close(): Promise<void> }>;
const hooks: Record<RoleName, RoleHook[]> = { api: [], worker: [], scheduler: [] };
export function onRoleStart(role: RoleName, hook: RoleHook): void {
  hooks[role].push(hook);
}

/** How long in-flight HTTP requests may take to finish at shutdown before their connections are cut. */
export const HTTP_CLOSE_GRACE_MS = 10_000;

/** The one start path: every role this process runs, and one close that stops them all at once. */
export async function startRoles(ctx: AppContext, roles: Set<RoleName>): Promise<Running> {
  const closers: (() => Promise<void>)[] = [];
  let port: number | undefined;
  if (roles.has('worker')) {
    const ledger = startLedgerWorkers({ ...batchedWorkerDeps(ctx), refundWaitMs: ctx.env.TALLY_REFUND_WAIT_SECONDS * 1000 });
    closers.push(() => ledger.close());
    const maintenance = startMaintenanceWorker(ctx);
    closers.push(() => maintenance.close());
    for (const w of [...ledger.workers, maintenance]) workerCreated(w); // observers (job metrics) attach here
  }
  if (roles.has('scheduler')) {
    const s = await startScheduler(ctx);
    closers.push(() => s.close());
  }
  for (const role of ROLE_NAMES) {
    if (!roles.has(role)) continue;
    for (const hook of hooks[role]) {
      const h = await hook(ctx);
      closers.push(() => h.close());
    }
  }
  if (roles.has('api')) {
    const app = await buildServer(ctx);
    await app.listen({ port: ctx.env.PORT, host: ctx.env.HOST });
    const addr = app.server.address();
    port = typeof addr === 'object' && addr ? addr.port : ctx.env.PORT;
    closers.push(() => closeServer(app, HTTP_CLOSE_GRACE_MS));
  }
  return {
    port,
    async close() {
      // Everything stops at once, so grace periods overlap instead of adding up — and no HTTP client (a slow
      // body, a keep-alive socket) can hold the workers from draining: the server refuses new requests at once,
      // closes idle keep-alive sockets, and cuts what is still open after HTTP_CLOSE_GRACE_MS.
      const report = (err: unknown) => ctx.log.error({ err }, 'error while closing');
      await Promise.all(closers.map((c) => c().catch(report)));
    },
  };
}
