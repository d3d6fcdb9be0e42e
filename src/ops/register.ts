// The operations module: Bull Board, the ops dashboard, /metrics, /readyz, job metrics and `tally demo`.
import { addDevInfo } from '../cli/dev.ts';
import '../cli/demo.ts';
import { registerRoutes } from '../http/server.ts';
import { onRoleStart } from '../roles.ts';
import { onWorkerCreated } from '../workers/worker-registry.ts';
import { BULL_BOARD_PATH, bullBoardRoutes } from './bull-board.ts';
import { dashboardRoutes } from './dashboard.ts';
import { observeWorker, startJobStatsSink } from './job-stats.ts';
import { metricsRoutes } from './metrics.ts';
import { readyzRoutes } from './readyz.ts';

registerRoutes(bullBoardRoutes);
registerRoutes(dashboardRoutes);
registerRoutes(metricsRoutes);
registerRoutes(readyzRoutes);

// Every worker this process runs is counted; the counts go to Redis for whichever api process is scraped.
onWorkerCreated(observeWorker);
onRoleStart('worker', async (ctx) => startJobStatsSink(ctx.redis, ctx.env.TALLY_PREFIX));

addDevInfo(({ port, env }) => {
  const base = `http://127.0.0.1:${port}`;
  return [
    `  Bull Board   ${base}${BULL_BOARD_PATH}   (user admin, password = the admin token)`,
    `  dashboard    ${base}/admin/dashboard   (same login)`,
    `  metrics      curl ${env.TALLY_METRICS_TOKEN ? `-H 'Authorization: Bearer <TALLY_METRICS_TOKEN>' ` : ''}${base}/metrics`,
  ];
});
