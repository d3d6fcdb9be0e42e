import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { HttpError } from '../errors.ts';
import { auditWrites } from '../http/audit.ts';
import { authorize } from '../http/auth.ts';
import { ALL_QUEUES, opsQueue } from './snapshot.ts';

export const BULL_BOARD_PATH = '/admin/queues';

/**
 * Bull Board at /admin/queues over every tally queue, behind the admin token: as a Bearer token, or as the
 * password of HTTP Basic (user `admin`) so a person's browser can open it. Not read-only: an operator
 * retries, promotes, cleans, adds and removes jobs from here — each such action is audited (`admin_audit`,
 * and a log line) with the credential used and the client IP before it runs.
 */
export async function bullBoardRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  // Bull Board's plugin installs its own error handler, which would turn a thrown 401 into a 500:
  // the refusal is sent from the hook itself, in tally's error shape.
  const check = authorize({ api: ctx.env.TALLY_API_TOKEN, admin: ctx.env.TALLY_ADMIN_TOKEN }, 'admin', { allowBasic: true });
  app.addHook('onRequest', async (req, reply) => {
    try {
      await check(req, reply);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      return reply.status(err.status).send({ error: { code: err.code, message: err.message } });
    }
  });
  auditWrites(app, ctx);
  // Bull Board's API answers its own errors as `{error:{key:"ERRORS.QUEUE_NOT_FOUND"}}` (and validation ones with a
  // top-level code): rewritten into tally's one error shape (contract v2 §4), the key kept for Bull Board's UI.
  app.addHook('onSend', async (_req, reply, payload) => (reply.statusCode >= 400 && typeof payload === 'string' ? inErrorShape(payload, reply.statusCode) : payload));
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    // The producer's Queue objects share the process's Redis connection; ctx.close() closes them.
    queues: ALL_QUEUES.map((name) => new BullMQAdapter(opsQueue(ctx, name), { readOnlyMode: false, allowRetries: true })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'tally' } },
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
}

/** A Bull Board error body in tally's error shape; anything already in it (or not JSON) passes unchanged. */
export function inErrorShape(payload: string, status: number): string {
  let body: unknown;
  try {
    body = JSON.parse(payload);
  } catch {
    return payload;
  }
  const error = (body as { error?: unknown } | null)?.error;
  if (error && typeof error === 'object' && typeof (error as { code?: unknown }).code === 'string') return payload;
  const key = error && typeof error === 'object' ? (error as { key?: unknown }).key : undefined;
  const text = typeof key === 'string' ? key : typeof error === 'string' ? error : `HTTP ${status}`;
  const code = typeof key === 'string' ? key.replace(/^ERRORS\./, '').toLowerCase() : status === 404 ? 'not_found' : 'bad_request';
  const message = (body as { message?: unknown })?.message;
  return JSON.stringify({
    error: { code, message: typeof message === 'string' ? message : text, ...(typeof key === 'string' ? { key } : {}), ...(error && typeof error === 'object' ? { details: error } : {}) },
  });
}
