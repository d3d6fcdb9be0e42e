import { STATUS_CODES } from 'node:http';
import { createRequire } from 'node:module';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { createJsonSchemaTransform, createJsonSchemaTransformObject } from 'fastify-type-provider-zod';
import type { AuthMode } from './auth.ts';
import { IDEMPOTENT_ROUTES, KEY_HEADER_SCHEMA } from './idempotency.ts';
import { QUEUE_BATCHES, QUEUE_PAYLOADS } from './queue-schemas.ts';
import { apiSchemas, inputSchemas } from './schemas.ts';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** What the document covers: the API (`/v1`) and the probes; the admin pages and the docs themselves are not API. */
function documented(url: string): boolean {
  return url.startsWith('/v1/') || url === '/healthz' || url === '/readyz' || url === '/metrics';
}

/** Routes the rate limit leaves alone (probes and scrapes must answer while a client floods). */
export const RATE_LIMIT_EXEMPT = new Set(['/healthz', '/readyz', '/metrics']);

const SECURITY: Record<AuthMode, Record<string, string[]>[]> = {
  api: [{ apiToken: [] }, { adminToken: [] }],
  admin: [{ adminToken: [] }],
  signed: [{ paymentSignature: [] }],
  public: [],
};

const ERROR_REF = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };

/** Responses every route can give whatever it declares: its auth's refusals and the rate limit's 429. */
function commonResponses(auth: AuthMode | undefined, url: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (auth === 'api' || auth === 'admin' || auth === 'signed') out['401'] = { description: 'Missing or invalid credentials', content: ERROR_REF };
  if (auth === 'admin') out['403'] = { description: 'The API token on an admin route', content: ERROR_REF };
  if (!RATE_LIMIT_EXEMPT.has(url)) {
    out['429'] = {
      description: 'Rate limit exceeded',
      headers: { 'retry-after': { type: 'integer', description: 'seconds until the window resets' } },
      content: ERROR_REF,
    };
  }
  return out;
}

/** A response without its own description gets the status text ("OK", "Created") instead of "Default Response". */
function described(responses: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(responses)) {
    const res = r as { description?: string };
    out[status] = res.description ? res : { ...res, description: STATUS_CODES[Number(status)] ?? 'Response' };
  }
  return out;
}

const zodTransform = createJsonSchemaTransform({ schemaRegistry: apiSchemas, skipList: [] });
const zodComponents = createJsonSchemaTransformObject({ schemaRegistry: apiSchemas });

type Doc = { components?: { schemas?: Record<string, unknown> } } & Record<string, unknown>;

/**
 * zod names every registered schema twice, `X` (as sent) and `XInput` (as received). Keep one name: the input
 * form for what clients write (queue payloads, request bodies), otherwise the output form, unless both are used
 * and differ.
 */
function tidyComponents(doc: Doc): Doc {
  const schemas = doc.components?.schemas ?? {};
  let text = JSON.stringify({ ...doc, components: { ...doc.components, schemas: {} } });
  const refersTo = (name: string) => text.includes(`"#/components/schemas/${name}"`) || JSON.stringify(schemas).includes(`"#/components/schemas/${name}"`);
  const rename = (from: string, to: string) => {
    text = text.replaceAll(`"#/components/schemas/${from}"`, `"#/components/schemas/${to}"`);
    for (const [k, v] of Object.entries(schemas)) schemas[k] = JSON.parse(JSON.stringify(v).replaceAll(`"#/components/schemas/${from}"`, `"#/components/schemas/${to}"`));
  };
  for (const name of Object.keys(schemas)) {
    const inName = `${name}Input`;
    if (!(inName in schemas)) continue;
    if (inputSchemas.has(name)) {
      schemas[name] = schemas[inName];
      delete schemas[inName];
      rename(inName, name);
    } else if (!refersTo(inName) || JSON.stringify(schemas[inName]) === JSON.stringify(schemas[name])) {
      delete schemas[inName];
      rename(inName, name);
    }
  }
  const sorted = Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b)));
  return { ...(JSON.parse(text) as Doc), components: { ...doc.components, schemas: sorted } };
}

/**
 * The OpenAPI 3.1 document, generated from the zod schemas the routes validate with (so it cannot drift), at
 * `GET /openapi.json`, rendered at `GET /docs`. Register before any route: @fastify/swagger collects routes as
 * they are added.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'tally',
        version,
        description:
          'Points, credits and affinity ledger. Every error is `{error:{code, message, details?}}`. Queue payloads ' +
          '(what a producer in any language enqueues on BullMQ, `jobId = event_id`) are under `components.schemas`, ' +
          'per queue in `x-tally-queues`; batch jobs (`{type:"batch", events}`, 1–1000 payloads of one queue) in `x-tally-batch-jobs`.',
      },
      tags: [
        { name: 'ledger', description: 'Balances, transactions, batches, quotes' },
        { name: 'money', description: 'Holds, orders, the payment callback, usage' },
        { name: 'affinity', description: 'Affinity values and admin adjustments' },
        { name: 'admin', description: 'Config and maintenance (admin token)' },
        { name: 'push', description: 'The live event stream (WebSocket)' },
        { name: 'ops', description: 'Health, readiness, metrics' },
      ],
      components: {
        securitySchemes: {
          apiToken: { type: 'http', scheme: 'bearer', description: 'TALLY_API_TOKEN (the admin token works too)' },
          adminToken: { type: 'http', scheme: 'bearer', description: 'TALLY_ADMIN_TOKEN' },
          paymentSignature: {
            type: 'apiKey',
            in: 'header',
            name: 'X-Tally-Signature',
            description: 'hex HMAC-SHA256(TALLY_PAYMENT_SECRET, raw body)',
          },
        },
      },
      ...{ 'x-tally-queues': QUEUE_PAYLOADS, 'x-tally-batch-jobs': QUEUE_BATCHES },
    } as never,
    transform: (arg) => {
      if (!documented(arg.url)) return { schema: { hide: true } as never, url: arg.url };
      const out = zodTransform(arg);
      const schema = { ...(out.schema ?? {}) } as Record<string, unknown>;
      const auth = arg.route.config?.auth;
      if (auth) schema.security = SECURITY[auth];
      if (IDEMPOTENT_ROUTES.has(`${String(arg.route.method)} ${arg.url}`)) schema.headers = { ...KEY_HEADER_SCHEMA, ...(schema.headers as object) };
      if (schema.response) schema.response = described({ ...commonResponses(auth, arg.url), ...(schema.response as object) });
      return { schema: schema as never, url: out.url };
    },
    transformObject: (obj) => tidyComponents(zodComponents(obj) as unknown as Doc) as never,
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true, uiConfig: { docExpansion: 'list', deepLinking: true } });
  app.get('/openapi.json', { config: { auth: 'public' }, schema: { hide: true } as never }, async () => app.swagger());
}
