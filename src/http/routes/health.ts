import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppContext } from '../../context.ts';

async function probe(fn: () => Promise<unknown>, ms = 2000): Promise<'ok' | string> {
  try {
    await Promise.race([fn(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), ms))]);
    return 'ok';
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}

const part = z.string().describe('"ok" or "error: …"');
const healthView = z.object({ status: z.enum(['ok', 'error']), postgres: part, redis: part });

export function healthRoutes(app: FastifyInstance, ctx: AppContext): void {
  /** Liveness of the dependencies: 503 naming the failing part. */
  app.withTypeProvider<ZodTypeProvider>().get('/healthz', {
    config: { auth: 'public' },
    schema: {
      tags: ['ops'],
      summary: 'Are PostgreSQL and Redis reachable? (no auth, never rate limited)',
      response: { 200: healthView, 503: healthView.describe('a dependency is unreachable') },
    },
  }, async (_req, reply) => {
    const [postgres, redis] = await Promise.all([probe(() => ctx.sql`SELECT 1`), probe(() => ctx.redis.ping())]);
    const ok = postgres === 'ok' && redis === 'ok';
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'error', postgres, redis });
  });
}
