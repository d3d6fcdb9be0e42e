import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppContext } from '../context.ts';
import { HttpError } from '../errors.ts';
import { errors } from '../http/schemas.ts';
import { PushGateway, STREAM_PATH } from './gateway.ts';
import { pushSettings } from './settings.ts';
import { verifyToken } from './token.ts';

/** Gateways of the servers built in this process (tests and dev info look at them). */
export const gateways = new Set<PushGateway>();

const streamQuery = z.looseObject({
  token: z.string().max(4096).optional().describe('base64url(json{user_id, exp}) + "." + base64url(HMAC-SHA256(TALLY_WS_SECRET, first part))'),
  since: z.string().max(128).optional().describe('the last event id seen: replays what came after it'),
});

/** The WebSocket endpoint on the API port: upgrades are taken on the raw server, before any fastify routing. */
export async function pushRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  if (!ctx.env.TALLY_WS_SECRET) ctx.log.warn('TALLY_WS_SECRET is not set: every WebSocket connection will be refused');
  const gateway = new PushGateway({
    redisUrl: ctx.env.REDIS_URL,
    prefix: ctx.env.TALLY_PREFIX,
    secret: ctx.env.TALLY_WS_SECRET,
    sql: ctx.sql,
    log: ctx.log.child({ role: 'api', component: 'push-gateway' }),
    settings: pushSettings,
    limits: {
      maxTtlSeconds: ctx.env.TALLY_WS_MAX_TTL_SECONDS,
      maxPerUser: ctx.env.TALLY_WS_MAX_PER_USER,
      maxConnections: ctx.env.TALLY_WS_MAX_CONNECTIONS,
    },
  });
  gateway.attach(app.server);
  gateways.add(gateway);
  // Before the HTTP server closes: it would otherwise wait for the upgraded sockets forever.
  app.addHook('preClose', async () => {
    gateways.delete(gateway);
    await gateway.close();
  });

  /** A plain GET (no Upgrade header) gets the same token check, then 426. The token is the credential here. */
  app.withTypeProvider<ZodTypeProvider>().get(STREAM_PATH, {
    config: { auth: 'public' },
    schema: {
      tags: ['push'],
      summary: 'The live event stream: connect with a WebSocket client (a plain GET answers 401 or 426)',
      querystring: streamQuery,
      response: errors(401, 426),
    },
  }, async (req) => {
    const check = verifyToken(ctx.env.TALLY_WS_SECRET, req.query.token, { maxTtlSeconds: ctx.env.TALLY_WS_MAX_TTL_SECONDS });
    if (!check.ok) throw new HttpError(401, 'unauthorized', check.reason === 'expired' ? 'token expired' : 'missing or invalid token');
    throw new HttpError(426, 'upgrade_required', 'connect with a WebSocket client');
  });
}
