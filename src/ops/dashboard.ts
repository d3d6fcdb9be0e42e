import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { HttpError } from '../errors.ts';
import { authorize } from '../http/auth.ts';
import { dashboardData, type DashboardData } from './dashboard-data.ts';
import { DASHBOARD_HTML } from './dashboard-page.ts';

/** uPlot's browser build and stylesheet, served from node_modules: no CDN, works offline. */
const UPLOT_DIST = join(dirname(createRequire(import.meta.url).resolve('uplot')), '..', 'dist');
/** A Map, so a name like `constructor` or `__proto__` finds nothing (an object literal would find its prototype). */
const ASSETS = new Map<string, { file: string; type: string }>([
  ['uPlot.iife.min.js', { file: 'uPlot.iife.min.js', type: 'application/javascript; charset=utf-8' }],
  ['uPlot.min.css', { file: 'uPlot.min.css', type: 'text/css; charset=utf-8' }],
]);

/** A page refresh scans the usage rollup and dead letters; several people watching must not multiply that. */
const CACHE_MS = 5000;

/** The ops dashboard at /admin/dashboard (HTML) and /admin/dashboard/data (JSON), admin token or Basic auth. */
export function dashboardRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.addHook('onRequest', authorize({ api: ctx.env.TALLY_API_TOKEN, admin: ctx.env.TALLY_ADMIN_TOKEN }, 'admin', { allowBasic: true }));
  let cached: { at: number; data: Promise<DashboardData> } | undefined;

  app.get('/admin/dashboard', async (_req, reply) => reply.type('text/html; charset=utf-8').send(DASHBOARD_HTML));

  app.get('/admin/dashboard/data', async () => {
    if (!cached || Date.now() - cached.at > CACHE_MS) {
      const data = dashboardData(ctx);
      cached = { at: Date.now(), data };
      data.catch(() => (cached = undefined)); // a failed read is retried by the next request, not cached
    }
    return cached.data;
  });

  app.get('/admin/dashboard/assets/:name', async (req, reply) => {
    const asset = ASSETS.get((req.params as { name: string }).name);
    if (!asset) throw new HttpError(404, 'not_found', 'no such asset');
    return reply.type(asset.type).header('cache-control', 'public, max-age=3600').send(await readFile(join(UPLOT_DIST, asset.file)));
  });
}
