import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { canonicalJson, sha256 } from '../config/store.ts';
import type { AppContext } from '../context.ts';
import { HttpError } from '../errors.ts';
import { claimKey, completeKey, readKey, releaseKey, type KeyRef } from './sql/idempotency-keys.ts';

/**
 * `Idempotency-Key` (CONTRACT v2 §4) on the routes below. The same key with the same request answers the first
 * response again, byte for byte (header `Idempotent-Replayed: true`); with another request, 409
 * `idempotency_conflict`; while the first is still running, 409 `idempotency_in_progress` (with Retry-After).
 *
 * Why a crash cannot lose or double an effect: the key is claimed (a row, `in_progress`, with a lease) before the
 * handler runs and the answer is stored before it is sent. If the process dies in between, the claim outlives it
 * until its lease passes; then the next request with the key takes it over and runs again. Running again is safe
 * because each of these routes makes its effect exactly once by an identity the request determines: holds and
 * ledger adjusts by their `event_id`, an affinity adjust by its `event_id` (derived from the key when the body has
 * none), an order by an `order_id` derived from the key. A failure (5xx) releases the claim at once.
 */
export const IDEMPOTENT_ROUTES = new Set(['POST /v1/orders', 'POST /v1/holds', 'POST /v1/admin/affinity/adjust', 'POST /v1/admin/ledger/adjust']);

/** Keys are 1–255 printable ASCII characters (U+0020–U+007E), e.g. a UUID. */
export const KEY_FORMAT = /^[\x20-\x7e]{1,255}$/;

/** The header in the OpenAPI document of every route above (the format is checked by the hook, not the schema). */
export const KEY_HEADER_SCHEMA = {
  type: 'object',
  properties: {
    'idempotency-key': {
      type: 'string',
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x20-\\x7e]+$',
      description: 'Same key + same request → the first response again; another request → 409 idempotency_conflict. Kept 24 h.',
    },
  },
};

/** Kept this long at least (the prune task runs hourly). */
export const RETENTION_HOURS = 24;

interface Claim {
  ref: KeyRef;
  owner: string;
  /** Stable for the key: what a route derives its effect's identity from. */
  id: string;
}

const claims = new WeakMap<FastifyRequest, Claim>();

/** An id derived from the request's Idempotency-Key (and its credential and route), or undefined without a key. */
export function idempotentId(req: FastifyRequest): string | undefined {
  return claims.get(req)?.id;
}

/**
 * Per route, what to do with the claim before the handler runs. The affinity adjust route makes up a random
 * event_id when the body has none: under a key it gets one derived from the key instead, so running it again is
 * the same event.
 */
const BEFORE_HANDLER: Record<string, (req: FastifyRequest, id: string) => void> = {
  'POST /v1/admin/affinity/adjust': (req, id) => {
    const body = req.body as { event_id?: string };
    if (body.event_id === undefined) body.event_id = `adjust-${id}`;
  },
};

function routeOf(req: FastifyRequest): string {
  return `${req.method} ${req.routeOptions.url ?? ''}`;
}

/** Installs the hooks on the root instance, before any route is registered (so every scope inherits them). */
export function installIdempotency(app: FastifyInstance, ctx: AppContext): void {
  const leaseSeconds = ctx.env.TALLY_IDEMPOTENCY_LEASE_SECONDS;
  const log = ctx.log.child({ component: 'idempotency' });

  app.addHook('preHandler', async (req: FastifyRequest, reply: FastifyReply) => {
    const route = routeOf(req);
    if (!IDEMPOTENT_ROUTES.has(route)) return;
    const header = req.headers['idempotency-key'];
    if (header === undefined) return;
    if (typeof header !== 'string' || !KEY_FORMAT.test(header)) {
      throw new HttpError(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1–255 printable ASCII characters');
    }
    // Scoped to the credential (a hash of the token, never the token) and the route.
    const ref = { scope: sha256(`${req.credential?.keyHash ?? 'anonymous'}\n${route}`), key: header };
    const requestHash = sha256(canonicalJson({ params: req.params ?? {}, query: req.query ?? {}, body: req.body ?? null }));
    const owner = randomUUID();
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await claimKey(ctx.sql, ref, requestHash, owner, leaseSeconds)) {
        // The request's hash too: a key reused (against advice) after it was pruned, for another request, derives another id.
        const id = sha256(`${ref.scope}\n${ref.key}\n${requestHash}`).slice(0, 32);
        claims.set(req, { ref, owner, id });
        BEFORE_HANDLER[route]?.(req, id);
        return;
      }
      const stored = await readKey(ctx.sql, ref);
      if (!stored) continue; // pruned or released in between: claim again
      if (stored.request_hash !== requestHash) {
        throw new HttpError(409, 'idempotency_conflict', 'this Idempotency-Key was used with a different request');
      }
      if (stored.status === 'done') {
        return reply
          .status(stored.response_status!)
          .header('content-type', 'application/json; charset=utf-8')
          .header('idempotent-replayed', 'true')
          .send(stored.response_body);
      }
      reply.header('retry-after', String(Math.max(1, stored.lease_left)));
      throw new HttpError(409, 'idempotency_in_progress', 'a request with this Idempotency-Key is still being processed; retry later');
    }
    throw new HttpError(409, 'idempotency_in_progress', 'this Idempotency-Key is changing hands; retry');
  });

  // The answer is stored before it is sent: a client never sees a first answer that a retry would not see again.
  app.addHook('onSend', async (req: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const claim = claims.get(req);
    if (!claim) return payload;
    claims.delete(req);
    try {
      if (reply.statusCode >= 500) await releaseKey(ctx.sql, claim.ref, claim.owner);
      else if (typeof payload === 'string') await completeKey(ctx.sql, claim.ref, claim.owner, reply.statusCode, payload);
    } catch (err) {
      // Not stored: the claim's lease runs out and a retry runs the request again (safe, see above).
      log.warn({ err: { message: (err as Error).message }, route: routeOf(req) }, 'idempotency key not stored');
    }
    return payload;
  });
}
