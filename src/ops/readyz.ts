import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppContext } from '../context.ts';
import { readMigrations } from '../db/migrate.ts';
import { within } from './snapshot.ts';

const part = z.string().describe('"ok" or "error: …"');
const readyView = z.object({ status: z.enum(['ready', 'not_ready']), postgres: part, redis: part, schema: part, config: part, shutdown: part });

/**
 * `/readyz` (no auth): may a load balancer send this process traffic? Unlike `/healthz` (are the dependencies
 * reachable) it also needs the schema migrated to this code's version and a config document applied, and it
 * turns 503 as soon as shutdown begins so traffic drains before the listener closes.
 */
export function readyzRoutes(app: FastifyInstance, ctx: AppContext): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  let expected: Promise<number> | undefined;

  app.withTypeProvider<ZodTypeProvider>().get('/readyz', {
    config: { auth: 'public' },
    schema: {
      tags: ['ops'],
      summary: 'May a load balancer send this process traffic? (no auth, never rate limited)',
      response: { 200: readyView, 503: readyView.describe('not ready: the failing parts say why') },
    },
  }, async (_req, reply) => {
    expected ??= readMigrations().then((files) => files.at(-1)?.version ?? 0);
    const check = async (fn: () => Promise<string>) => within(fn(), 2000).catch((err: Error) => `error: ${err.message}`);
    const [postgres, redis, schema, config] = await Promise.all([
      check(async () => (await ctx.sql`SELECT 1`, 'ok')),
      check(async () => (await ctx.redis.ping(), 'ok')),
      check(async () => {
        const [row] = await ctx.sql<{ v: number | null }[]>`SELECT max(version)::int AS v FROM tally_migrations`;
        const want = await expected!;
        return (row?.v ?? 0) >= want ? 'ok' : `error: schema at ${row?.v ?? 0}, code needs ${want} (run tally migrate)`;
      }),
      check(async () => {
        const [row] = await ctx.sql`SELECT 1 FROM config_documents LIMIT 1`;
        return row ? 'ok' : 'error: no config document applied (tally config apply FILE)';
      }),
    ]);
    const parts = { postgres, redis, schema, config, shutdown: closing ? 'error: shutting down' : 'ok' };
    const ready = Object.values(parts).every((p) => p === 'ok');
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', ...parts });
  });
}
