// Issue 5 — holds, orders and the payment callback, the usage dashboard, and the hold expiry sweep.
import { registerRoutes } from '../http/server.ts';
import { expireHolds } from '../ledger/sql/holds.ts';
import { MAINTENANCE_TASKS, registerMaintenanceTask } from '../maintenance/tasks.ts';
import { registerReconcileCheck } from '../maintenance/reconcile.ts';
import { onRoleStart } from '../roles.ts';
import { addSchedule } from '../scheduler.ts';
import { startOrderGrantRelay } from './order-grant-relay.ts';
import { paidOrderGrantViolations } from './order-grants-reconcile.ts';
import { refundViolations, usageRollupViolations } from './reconcile.ts';
import { moneyRoutes } from './routes.ts';

registerRoutes(moneyRoutes);
registerReconcileCheck(refundViolations);
registerReconcileCheck(usageRollupViolations);
registerReconcileCheck(paidOrderGrantViolations);
// Paid orders whose grant is not in BullMQ yet (Redis was down during the callback): enqueued by every worker.
onRoleStart('worker', startOrderGrantRelay);

const SWEEP_CHUNK = 5000;

/** Marks lapsed holds expired (they stopped counting at expires_at already; this closes them for good). */
async function sweepHolds(sql: Parameters<typeof expireHolds>[0]): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await expireHolds(sql, SWEEP_CHUNK);
    total += n;
    if (n < SWEEP_CHUNK) return total;
  }
}

registerMaintenanceTask('expire-holds', async ({ sql }) => ({ task: 'expire-holds', holds_expired: await sweepHolds(sql) }));

// `tally maintenance expire` sweeps holds too: one expiry task for everything that lapses.
const expireBatches = MAINTENANCE_TASKS.get('expire');
if (expireBatches) {
  registerMaintenanceTask('expire', async (deps) => ({ ...(await expireBatches(deps)), holds_expired: await sweepHolds(deps.sql) }));
}

addSchedule({ id: 'expire-holds', task: 'expire-holds', every: 60_000 });
