import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { AppContext } from '../context.ts';
import { HttpError } from '../errors.ts';
import { check, type AuthMode } from './auth.ts';
import { installJsonParser, JSON_BODY_LIMIT } from './body.ts';
import { clientErrorHandler, errorHandler, frameworkErrors, notFoundHandler } from './errors.ts';
import { installIdempotency } from './idempotency.ts';
import { RATE_LIMIT_EXEMPT, registerOpenApi } from './openapi.ts';
import { registerRateLimit, type RateGate } from './rate-limit.ts';
import { trackRoutes } from './route-table.ts';
import { adminRoutes } from './routes/admin.ts';
import { healthRoutes } from './routes/health.ts';
import { ledgerRoutes } from './routes/ledger.ts';

/** Extra route modules (affinity, push, orders, ops) plug in here without touching this file's logic. */
export type RouteModule = (app: FastifyInstance, ctx: AppContext) => void | Promise<void>;
const extraModules: RouteModule[] = [];
export function registerRoutes(module: RouteModule): void {
  extraModules.push(module);
}

/** Keep-alive idle time: longer than the 60 s idle timeout of common load balancers, so they close first. */
export const KEEP_ALIVE_TIMEOUT_MS = 72_000;
/** Headers come first and are small: a client that cannot send them in 10 s is not a client. */
const HEADERS_TIMEOUT_MS = 10_000;

const AUTH_MODES = new Set<AuthMode>(['api', 'admin', 'public', 'signed']);

/** A /v1 route that forgot to say who may call it would be public: refuse to start instead. */
function requireAuthMode(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const url = route.url ?? route.path;
    if (!url.startsWith('/v1/')) return;
    const auth = route.config?.auth;
    if (!auth || !AUTH_MODES.has(auth)) {
      throw new Error(`route ${String(route.method)} ${url} declares no config.auth (one of ${[...AUTH_MODES].join(', ')})`);
    }
  });
}

/**
 * The one gate every request passes in `onRequest`, before its body is read: refused while shutting down, then
 * counted against the rate limit (refusals count too), then authenticated by its route's `config.auth`.
 */
function installGate(app: FastifyInstance, ctx: AppContext, rate: RateGate | null): void {
  const tokens = { api: ctx.env.TALLY_API_TOKEN, admin: ctx.env.TALLY_ADMIN_TOKEN };
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const route = req.routeOptions.url ?? '';
    const probe = RATE_LIMIT_EXEMPT.has(route);
    if (closing && !probe) {
      reply.header('connection', 'close');
      throw new HttpError(503, 'shutting_down', 'this process is shutting down; retry (another process will answer)');
    }
    if (rate && !probe) await rate(req, reply);
    const auth = req.routeOptions.config?.auth;
    if (auth === 'api' || auth === 'admin') check(req, tokens, auth);
  });
  // A refusal sent before the body arrived closes the connection: the server neither reads nor drains the
  // rest of an upload it already refused (a 500 MB body behind a wrong token costs its headers, nothing more).
  app.addHook('onSend', async (req: FastifyRequest, reply: FastifyReply) => {
    if (reply.statusCode >= 400 && !req.raw.complete) reply.header('connection', 'close');
  });
}

function serverOptions(ctx: AppContext) {
  const requestTimeout = ctx.env.TALLY_HTTP_REQUEST_TIMEOUT_MS;
  const headersTimeout = Math.min(requestTimeout, HEADERS_TIMEOUT_MS);
  return {
    // Per-request access lines are noise at our rates: the API logs warnings and errors only.
    loggerInstance: ctx.log.child({ role: 'api' }, { level: 'warn' }),
    bodyLimit: JSON_BODY_LIMIT,
    trustProxy: ctx.env.TALLY_TRUST_PROXY as boolean | string[], // a number (hops) works too; fastify's types omit it
    requestTimeout,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // Node checks the timeouts every `connectionsCheckingInterval` (30 s by default): a tenth of the timeout
    // (at most 1 s) keeps a 408 close to its deadline.
    http: { requestTimeout, headersTimeout, connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(requestTimeout / 10))) },
    return503OnClosing: false, // the gate answers 503 itself, in tally's error shape
    clientErrorHandler,
    frameworkErrors,
    routerOptions: { maxParamLength: 512 }, // ids may be 128 chars; route params are checked by zod, not cut at 100
  };
}

export async function buildServer(ctx: AppContext): Promise<FastifyInstance> {
  const app = Fastify(serverOptions(ctx)) as unknown as FastifyInstance;
  const routes = trackRoutes(app);
  requireAuthMode(app);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler(routes));
  app.decorateRequest('credential', null);
  installJsonParser(app);
  installGate(app, ctx, await registerRateLimit(app, ctx.env));
  installIdempotency(app, ctx);
  await registerOpenApi(app);

  await app.register(async (scope) => healthRoutes(scope, ctx));
  await app.register(async (scope) => ledgerRoutes(scope, ctx));
  await app.register(async (scope) => adminRoutes(scope, ctx));
  for (const m of extraModules) await app.register(async (scope) => m(scope, ctx));
  return app;
}

/**
 * Stops the server: no new requests (the gate answers 503), idle keep-alive sockets closed at once, in-flight
 * requests get `graceMs` to finish, then every connection is cut — one slow client cannot hold a shutdown.
 */
export async function closeServer(app: FastifyInstance, graceMs: number): Promise<void> {
  const closing = app.close();
  app.server.closeIdleConnections();
  const cut = setTimeout(() => app.server.closeAllConnections(), graceMs);
  cut.unref();
  try {
    await closing;
  } finally {
    clearTimeout(cut);
  }
}
