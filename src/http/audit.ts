import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import { errorBody } from './errors.ts';
import { auditOutcome, insertAudit } from './sql/admin-audit.ts';

/** Largest request body kept in an audit row; a bigger one is recorded by its size only. */
const MAX_AUDITED_BODY = 16 * 1024;

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
const auditIds = new WeakMap<FastifyRequest, bigint>();

/**
 * PostgreSQL's jsonb holds neither U+0000 nor lone surrogates: both become U+FFFD in the record (keys too).
 * Bodies nest at most 64 deep (the JSON parser's bound), so the recursion is bounded.
 */
function scrub(value: unknown): unknown {
  if (typeof value === 'string') return (value as string & { toWellFormed(): string }).toWellFormed().replaceAll('\u0000', '\uFFFD');
  if (Array.isArray(value)) return value.map(scrub);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [scrub(k), scrub(v)]));
  return value;
}

function boundedBody(body: unknown): unknown {
  if (body === undefined) return undefined;
  const text = JSON.stringify(body) ?? '';
  return text.length <= MAX_AUDITED_BODY ? scrub(body) : { truncated: true, bytes: text.length };
}

/**
 * Audits every write in this scope (Bull Board's retry/promote/clean/add/remove…, the admin API): a row in
 * `admin_audit` naming the credential (admin token as Bearer or as the Basic password), the client IP, the
 * action and its target is written before the action runs — if it cannot be written the action is refused
 * (503) — and the answer's status is filled in afterwards and logged. Tokens are never recorded.
 * Add it to a scope whose routes already authenticate in `onRequest`.
 */
export function auditWrites(app: FastifyInstance, ctx: AppContext): void {
  const log = ctx.log.child({ component: 'admin-audit' });

  app.addHook('preHandler', async (req: FastifyRequest, reply: FastifyReply) => {
    if (READS.has(req.method)) return;
    const params = (req.params ?? {}) as Record<string, string | undefined>;
    try {
      const id = await insertAudit(ctx.sql, {
        credential: req.credential?.scheme ?? 'bearer',
        ip: req.ip,
        user_agent: req.headers['user-agent']?.slice(0, 256) ?? null,
        method: req.method,
        path: req.url.split('?')[0]!.slice(0, 1024),
        action: `${req.method} ${req.routeOptions.url ?? ''}`,
        queue: params.queueName ?? null,
        job_id: params.jobId ?? null,
        request: boundedBody(req.body),
      });
      auditIds.set(req, id);
    } catch (err) {
      log.error({ err: { message: (err as Error).message }, action: `${req.method} ${req.routeOptions.url}` }, 'admin action refused: audit not written');
      return reply.status(503).send(errorBody('audit_unavailable', 'the action could not be audited, so it was not run; retry'));
    }
  });

  app.addHook('onResponse', async (req: FastifyRequest, reply: FastifyReply) => {
    const id = auditIds.get(req);
    if (id === undefined) return;
    const params = (req.params ?? {}) as Record<string, string | undefined>;
    log.info(
      { audit_id: String(id), action: `${req.method} ${req.routeOptions.url}`, credential: req.credential?.scheme, ip: req.ip, queue: params.queueName, job_id: params.jobId, status: reply.statusCode },
      'admin action',
    );
    await auditOutcome(ctx.sql, id, reply.statusCode).catch((err: Error) => log.warn({ err: { message: err.message }, audit_id: String(id) }, 'audit outcome not recorded'));
  });
}
