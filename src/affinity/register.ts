// The affinity engine's one entry file (listed in src/modules.ts): routes, the worker, decay and its schedule,
// and the reconcile checks plug into the foundation here.
import { registerRoutes } from '../http/server.ts';
import { registerReconcileCheck } from '../maintenance/reconcile.ts';
import { registerMaintenanceTask } from '../maintenance/tasks.ts';
import { onRoleStart } from '../roles.ts';
import { addSchedule } from '../scheduler.ts';
import { startAffinityWorker } from '../workers/affinity-worker.ts';
import { batchedWorkerDeps } from '../workers/worker-deps.ts';
import { runDecay } from './decay.ts';
import { checkAffinity } from './reconcile.ts';
import { affinityRoutes } from './routes.ts';

registerRoutes(affinityRoutes);

onRoleStart('worker', async (ctx) => startAffinityWorker(batchedWorkerDeps(ctx)));

registerMaintenanceTask('decay', ({ sql, configs }) => runDecay(sql, configs));
// Hourly, not daily: a run is idempotent per natural day, and hourly lets devices decay within an hour of
// midnight in whatever timezone is configured. The job scheduler fires once per interval across processes.
addSchedule({ id: 'affinity-decay', task: 'decay', every: 60 * 60_000 });

registerReconcileCheck(checkAffinity);
