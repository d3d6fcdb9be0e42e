import Fastify, { type FastifyInstance, type FastifyError } from 'fastify';
import type { AppContext } from '../context.ts';
import { HttpError } from '../errors.ts';
import { adminRoutes } from './routes/admin.ts';
import { healthRoutes } from './routes/health.ts';
import { ledgerRoutes } from './routes/ledger.ts';

/** Extra route modules (affinity, push, orders, ops) plug in here without touching this file's logic. */
export type RouteModule = (app: FastifyInstance, ctx: AppContext) => void | Promise<void>;
const extraModules: RouteModule[] = [];
export function registerRoutes(module: RouteModule): void {
  extraModules.push(module);
}

export async function buildServer(ctx: AppContext): Promise<FastifyInstance> {
  const app = Fastify({
    // Per-request access lines are noise at our rates: the API logs warnings and errors only.
    loggerInstance: ctx.log.child({ role: 'api' }, { level: 'warn' }),
    bodyLimit: 1024 * 1024,
    trustProxy: true,
    routerOptions: { maxParamLength: 512 }, // ids may be 128 chars; route params are checked by zod, not cut at 100
  });

  app.setErrorHandler((err: FastifyError | HttpError, req, reply) => {
    if (err instanceof HttpError) {
      return reply.status(err.status).send({ error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } });
    }
    const status = (err as FastifyError).statusCode;
    if (status && status >= 400 && status < 500) {
      // Malformed JSON, wrong content type, body too large…
      return reply.status(status).send({ error: { code: (err as FastifyError).code?.toLowerCase() ?? 'bad_request', message: err.message } });
    }
    req.log.error({ err }, 'request failed');
    return reply.status(500).send({ error: { code: 'internal', message: 'internal error' } });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });

  await app.register(async (scope) => healthRoutes(scope, ctx));
  await app.register(async (scope) => ledgerRoutes(scope, ctx));
  await app.register(async (scope) => adminRoutes(scope, ctx));
  for (const m of extraModules) await app.register(async (scope) => m(scope, ctx));
  return app as unknown as FastifyInstance;
}
