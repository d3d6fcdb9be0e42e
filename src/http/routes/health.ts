import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../context.ts';

async function probe(fn: () => Promise<unknown>, ms = 2000): Promise<'ok' | string> {
  try {
    await Promise.race([fn(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), ms))]);
    return 'ok';
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}

export function healthRoutes(app: FastifyInstance, ctx: AppContext): void {
  /** Liveness of the dependencies: 503 naming the failing part. */
  app.get('/healthz', async (_req, reply) => {
    const [postgres, redis] = await Promise.all([probe(() => ctx.sql`SELECT 1`), probe(() => ctx.redis.ping())]);
    const ok = postgres === 'ok' && redis === 'ok';
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'error', postgres, redis });
  });
}
