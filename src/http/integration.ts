// Issue 11 — the integration surface: HTTP ingest, history and statements, the catalogue reads, admin ledger
// adjusts, device activation, and the pruning of Idempotency-Keys (the keys' hooks are installed by the server).
import { retentionOf } from '../maintenance/retention.ts';
import { registerMaintenanceTask } from '../maintenance/tasks.ts';
import { addSchedule } from '../scheduler.ts';
import { RETENTION_HOURS } from './idempotency.ts';
import { adminLedgerRoutes } from './routes/admin-ledger.ts';
import { adminConfigRoutes, catalogRoutes } from './routes/catalog.ts';
import { deviceRoutes } from './routes/devices.ts';
import { eventRoutes } from './routes/events.ts';
import { historyRoutes } from './routes/history.ts';
import { registerRoutes } from './server.ts';
import { pruneKeys } from './sql/idempotency-keys.ts';

registerRoutes(eventRoutes);
registerRoutes(historyRoutes);
registerRoutes(catalogRoutes);
registerRoutes(adminConfigRoutes);
registerRoutes(adminLedgerRoutes);
registerRoutes(deviceRoutes);

registerMaintenanceTask('idempotency-keys', async ({ sql, env }) => {
  const { idempotencyHours, chunk } = retentionOf(env);
  // The contract keeps keys at least 24 h, whatever a caller passes.
  const hours = Math.max(RETENTION_HOURS, idempotencyHours);
  let pruned = 0;
  for (;;) {
    const n = await pruneKeys(sql, hours, chunk);
    pruned += n;
    if (n < chunk) return { task: 'idempotency-keys', retention_hours: hours, pruned };
  }
});
addSchedule({ id: 'idempotency-keys', task: 'idempotency-keys', every: 60 * 60_000 });
