// Issue 11 — the integration surface: HTTP ingest, history and statements, the catalogue reads, admin ledger
// adjusts, device activation, and the pruning of Idempotency-Keys (the keys' hooks are installed by the server).
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

const PRUNE_CHUNK = 5000;

registerMaintenanceTask('idempotency-keys', async ({ sql }) => {
  let pruned = 0;
  for (;;) {
    const n = await pruneKeys(sql, RETENTION_HOURS, PRUNE_CHUNK);
    pruned += n;
    if (n < PRUNE_CHUNK) return { task: 'idempotency-keys', retention_hours: RETENTION_HOURS, pruned };
  }
});
addSchedule({ id: 'idempotency-keys', task: 'idempotency-keys', every: 60 * 60_000 });
