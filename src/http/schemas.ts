import { z } from 'zod';
import { HttpError } from '../errors.ts';

/**
 * Schemas shared by the routes, and the registry that names schemas in the OpenAPI document: a schema added
 * to `apiSchemas` with an id becomes `#/components/schemas/<id>` and every route using it refers to it there.
 */
export const apiSchemas = z.registry<{ id?: string; description?: string; [keyword: string]: unknown }>();

/** Ids whose component describes what a client sends (zod's input form), e.g. queue payloads. */
export const inputSchemas = new Set<string>();

/** Names `schema` in the document (components) and returns it unchanged. */
export function named<S extends z.ZodType>(schema: S, id: string, description?: string, opts: { input?: boolean } = {}): S {
  apiSchemas.add(schema, { id, ...(description ? { description } : {}) });
  if (opts.input) inputSchemas.add(id);
  return schema;
}

export const errorSchema = named(
  z.object({
    error: z.object({
      code: z.string().describe('stable, machine-readable: switch on this'),
      message: z.string().describe('for people; may change'),
      details: z.unknown().optional(),
    }),
  }),
  'Error',
  'Every error tally answers: 4xx and 5xx alike.',
);

const ERROR_TEXT: Record<number, string> = {
  400: 'Malformed or out-of-range input (path, query or body)',
  401: 'Missing or invalid credentials',
  402: 'Not enough available balance',
  403: 'A valid token without the right (the API token on an admin route)',
  404: 'Not found',
  409: 'Conflicts with an earlier request (same id, other content)',
  413: 'Body too large',
  415: 'Unsupported content type',
  422: 'Well-formed but refused by the rules in force (config, pricing)',
  426: 'Upgrade required',
  429: 'Rate limit exceeded; see Retry-After',
  503: 'A dependency is unavailable',
  504: 'Accepted but not applied in time',
};

/** Error responses for a route's schema: `response: { 200: view, ...errors(400, 404) }`. */
export function errors<const S extends number>(...statuses: S[]) {
  const out = {} as Record<S, { description: string; content: { 'application/json': { schema: typeof errorSchema } } }>;
  for (const s of statuses) out[s] = { description: ERROR_TEXT[s] ?? 'Error', content: { 'application/json': { schema: errorSchema } } };
  return out;
}

/** `?limit=` for paged reads: an integer in [1, max], default `def`; anything else is a 400. */
export function limitSchema(def: number, max: number) {
  return z.coerce.number().int().min(1).max(max).default(def).describe(`page size, 1–${max} (default ${def})`);
}

/** Ids in cursors are PostgreSQL bigints: a longer or larger number is malformed, not a 500. */
export const MAX_BIGINT = 9223372036854775807n;

/** A cursor's id, or a 400 when the text is not an unsigned bigint. */
export function cursorId(text: string): bigint {
  if (!/^\d{1,19}$/.test(text)) throw new HttpError(400, 'invalid_cursor', 'malformed cursor');
  const id = BigInt(text);
  if (id > MAX_BIGINT) throw new HttpError(400, 'invalid_cursor', 'malformed cursor');
  return id;
}
