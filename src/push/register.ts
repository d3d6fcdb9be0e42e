// Live push (issue 4): outbox relay → Redis pub/sub fanout → WebSocket gateway. See docs/push.md.
import '../cli/token.ts';
import { addDevInfo } from '../cli/dev.ts';
import { registerRoutes } from '../http/server.ts';
import { retentionOf } from '../maintenance/retention.ts';
import { registerMaintenanceTask } from '../maintenance/tasks.ts';
import { onRoleStart } from '../roles.ts';
import { addSchedule } from '../scheduler.ts';
import { startRelay, startSweepSchedule } from './relay.ts';
import { pushRoutes } from './routes.ts';
import { pushMetrics } from './metrics.ts';
import { pushSettings } from './settings.ts';
import { laggingConsumers, pruneOutbox, unrelayedBacklog } from './sql/prune-outbox.ts';
import { signToken } from './token.ts';

registerRoutes(pushRoutes);
onRoleStart('worker', startRelay);
onRoleStart('scheduler', startSweepSchedule);

registerMaintenanceTask('outbox-prune', async ({ sql, env }) => {
  const { outboxHours, chunk } = retentionOf(env);
  const deleted = await pruneOutbox(sql, outboxHours, chunk);
  pushMetrics.pruned.inc(deleted);
  const [backlog, consumers] = await Promise.all([unrelayedBacklog(sql), laggingConsumers(sql)]);
  return {
    task: 'outbox-prune',
    deleted,
    retention_hours: outboxHours,
    unrelayed: backlog.rows,
    oldest_unrelayed_seconds: backlog.oldestSeconds,
    // Feed consumers behind the head; one far behind holds rows past the retention (drop a retired one).
    consumers,
  };
});
addSchedule({ id: 'outbox-prune', task: 'outbox-prune', every: pushSettings.pruneEveryMs });

addDevInfo(({ port, env }) => {
  if (!env.TALLY_WS_SECRET) return [];
  const token = signToken(env.TALLY_WS_SECRET, { userId: 'alice', exp: Math.floor(Date.now() / 1000) + 24 * 3600 });
  return [
    `  live push    ws://127.0.0.1:${port}/v1/stream?token=${token}   (user alice, 24h)`,
    `  a token      TALLY_WS_SECRET=${env.TALLY_WS_SECRET} npx tally token --user alice --ttl 1h`,
  ];
});
