import { readFile } from 'node:fs/promises';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/modules.ts'; // every feature module, as the CLI loads them: their routes are walked too
import { createTallyClient, type TallyClient } from '../src/client/index.ts';
import { renderClientTypes, TYPES_FILE } from '../src/client/generate.ts';
import { createContext, type AppContext } from '../src/context.ts';
import { buildServer } from '../src/http/server.ts';
import { chargesJobSchema } from '../src/queues/charges/schema.ts';
import { grantsJobSchema } from '../src/queues/grants/schema.ts';
import { affinityJobSchema } from '../src/queues/affinity-events/schema.ts';
import { affinityBatchJobSchema, batchEnvelopeProblem, chargesBatchJobSchema, grantsBatchJobSchema } from '../src/queues/batch.ts';
import { ADMIN_TOKEN, API_TOKEN, createWorld, type TestWorld } from './helpers/env.ts';

let world: TestWorld;
let ctx: AppContext;
let app: FastifyInstance;
let base: string;
let doc: any;
let client: TallyClient;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  ctx = createContext(world.env);
  app = await buildServer(ctx);
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const res = await fetch(`${base}/openapi.json`); // no credentials: the document is public
  expect(res.status).toBe(200);
  doc = await res.json();
  client = createTallyClient({ baseUrl: base, token: API_TOKEN });
});
afterAll(async () => {
  await app?.close();
  await ctx?.close();
  await world?.drop();
});

/** `/v1/users/:user_id/balances/:asset` → `/v1/users/{user_id}/balances/{asset}` */
const openapiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document (a real validator, not a shape check)', async () => {
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('documents every /v1 route fastify registered, with its path params, a success schema and its security', () => {
    const routes = app.routeTable.routes.filter((r) => r.url.startsWith('/v1/') && r.method !== 'HEAD');
    expect(routes.length).toBeGreaterThanOrEqual(16);
    for (const route of routes) {
      const op = doc.paths[openapiPath(route.url)]?.[route.method.toLowerCase()];
      expect(op, `${route.method} ${route.url} is missing from the document`).toBeDefined();
      const pathParams = [...route.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]).sort();
      const documented = (op.parameters ?? []).filter((p: any) => p.in === 'path').map((p: any) => p.name).sort();
      expect(documented, `${route.method} ${route.url}: path params`).toEqual(pathParams);
      const success = Object.keys(op.responses).filter((s) => /^2\d\d$/.test(s));
      const errorsOnly = route.url === '/v1/stream'; // a plain GET never succeeds: the WebSocket upgrade does
      if (!errorsOnly) expect(success.length, `${route.method} ${route.url}: no 2xx response schema`).toBeGreaterThan(0);
      // JSON, or the one streamed route's own types (the statement: ndjson or csv).
      for (const s of success) expect(Object.values<any>(op.responses[s].content ?? {})[0]?.schema, `${route.method} ${route.url} ${s}`).toBeDefined();
      expect(op.responses['429'], `${route.method} ${route.url}: the rate limit's 429`).toBeDefined();
      const auth = route.config?.auth;
      const schemes = (op.security ?? []).flatMap((s: object) => Object.keys(s)).sort();
      expect(schemes, `${route.method} ${route.url}: security`).toEqual(
        { api: ['adminToken', 'apiToken'], admin: ['adminToken'], signed: ['paymentSignature'], public: [] }[auth!],
      );
    }
  });

  it('lists no route that does not exist, and nothing of the admin pages or the docs themselves', () => {
    const registered = new Set(app.routeTable.routes.map((r) => `${r.method.toLowerCase()} ${openapiPath(r.url)}`));
    for (const [path, ops] of Object.entries<any>(doc.paths)) {
      expect(path.startsWith('/admin') || path.startsWith('/docs') || path === '/openapi.json').toBe(false);
      for (const method of Object.keys(ops)) expect(registered.has(`${method} ${path}`), `${method} ${path}`).toBe(true);
    }
  });

  it('describes every error response with the one error shape', () => {
    for (const ops of Object.values<any>(doc.paths)) {
      for (const op of Object.values<any>(ops)) {
        for (const [status, res] of Object.entries<any>(op.responses)) {
          if (Number(status) >= 400 && !(ops === doc.paths['/healthz'] || ops === doc.paths['/readyz'])) {
            expect(res.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
          }
        }
      }
    }
    expect(doc.components.schemas.Error.required).toEqual(['error']);
  });

  it('carries the queue payloads as JSON Schemas under components, per queue', () => {
    for (const name of ['GrantPayload', 'RewardEventPayload', 'ChargePayload', 'RefundPayload', 'AffinityEventPayload', 'AffinityAdjustPayload', 'Usage']) {
      expect(doc.components.schemas[name], name).toMatchObject({ type: 'object', additionalProperties: false });
    }
    expect(doc['x-tally-queues']).toEqual({
      grants: '#/components/schemas/GrantsJob',
      charges: '#/components/schemas/ChargesJob',
      'affinity-events': '#/components/schemas/AffinityEventsJob',
    });
    expect(Object.keys(doc.components.schemas).filter((n) => n.endsWith('Input'))).toEqual([]);
  });

  it('the payload schemas agree with the workers\' zod schemas: what one accepts, the other does', () => {
    // What a Python or Go producer would do with the document: compile the component, validate before enqueueing.
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    (addFormats as unknown as (a: Ajv2020) => void)(ajv);
    ajv.addSchema({ $id: 'tally', components: doc.components });
    const check = (name: string) => ajv.compile({ $ref: `tally#/components/schemas/${name}` });
    const cases: [string, { safeParse(v: unknown): { success: boolean } }, unknown][] = [
      ['GrantsJob', grantsJobSchema, { type: 'grant', event_id: 'g-1', user_id: 'u1', asset: 'points', amount: 5, source: 'gift' }],
      ['GrantsJob', grantsJobSchema, { type: 'grant', event_id: 'g-1', user_id: 'u1', asset: 'points', amount: 5, source: 'gift', expires_at: null }],
      ['GrantsJob', grantsJobSchema, { type: 'grant', event_id: '12345', user_id: 'u1', asset: 'points', amount: 5, source: 'gift' }],
      ['GrantsJob', grantsJobSchema, { type: 'grant', event_id: 'g-1', user_id: 'u1', asset: 'points', amount: 0, source: 'gift' }],
      ['GrantsJob', grantsJobSchema, { type: 'grant', event_id: 'g-1', user_id: 'u1', asset: 'points', amount: 2 ** 53, source: 'gift' }],
      ['GrantsJob', grantsJobSchema, { type: 'grant', event_id: 'g-1', user_id: 'u1', asset: 'points', amount: 5, source: 'gift', extra: 1 }],
      ['GrantsJob', grantsJobSchema, { type: 'reward.event', event_id: 'r-1', event_type: 'forum.post.liked', event_version: '1', receiver_user_id: 'u', source_ref_id: 'p1' }],
      ['GrantsJob', grantsJobSchema, { type: 'grant', event_id: 'g-1', user_id: 'u1', asset: 'points', amount: 5, source: 'gift', expires_at: '2026-13-01T00:00:00Z' }],
      ['ChargesJob', chargesJobSchema, { type: 'charge', event_id: 'c-1', user_id: 'u1', asset: 'points', source_type: 'tts', source_id: 's', policy: 'guarded', usage: { char_count: 10 } }],
      ['ChargesJob', chargesJobSchema, { type: 'charge', event_id: 'c-1', user_id: 'u1', asset: 'points', source_type: 'tts', source_id: 's', policy: 'maybe' }],
      ['ChargesJob', chargesJobSchema, { type: 'refund', event_id: 'r-1', charge_event_id: 'c-1', amount: 3 }],
      ['ChargesJob', chargesJobSchema, { type: 'refund', event_id: 'r-1', charge_event_id: 'c-1', amount: 1.5 }],
      ['AffinityEventsJob', affinityJobSchema, { type: 'affinity.event', event_id: 'a-1', user_id: 'u', device_id: 'd', rule_key: 'chat', source: 'app', metadata: { units: 2, x: 'y' } }],
      ['AffinityEventsJob', affinityJobSchema, { type: 'affinity.adjust', event_id: 'a-2', user_id: 'u', device_id: 'd', delta: 2 ** 31, operator_id: 'op', reason: 'x' }],
      ['AffinityEventsJob', affinityJobSchema, { type: 'nope', event_id: 'a-3' }],
    ];
    for (const [name, zod, payload] of cases) {
      expect(check(name)(payload), `${name} ${JSON.stringify(payload)}`).toBe(zod.safeParse(payload).success);
    }
  });

  it('carries the batch jobs per queue, and they agree with the worker: what the document accepts, the worker applies', () => {
    expect(doc['x-tally-batch-jobs']).toEqual({
      grants: '#/components/schemas/GrantsBatchJob',
      charges: '#/components/schemas/ChargesBatchJob',
      'affinity-events': '#/components/schemas/AffinityEventsBatchJob',
    });
    expect(doc.components.schemas.BatchJobResult).toMatchObject({ type: 'object', required: ['outcome', 'results'] });
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    (addFormats as unknown as (a: Ajv2020) => void)(ajv);
    ajv.addSchema({ $id: 'tally', components: doc.components });
    const check = (name: string) => ajv.compile({ $ref: `tally#/components/schemas/${name}` });
    const g = { type: 'grant', event_id: 'g-1', user_id: 'u1', asset: 'points', amount: 5, source: 'gift' };
    const c = { type: 'charge', event_id: 'c-1', user_id: 'u1', asset: 'points', source_type: 'tts', source_id: 's', policy: 'guarded' };
    const a = { type: 'affinity.event', event_id: 'a-1', user_id: 'u', device_id: 'd', rule_key: 'chat', source: 'app' };
    const r = { type: 'reward.event', event_id: 'r-1', event_type: 'x', receiver_user_id: 'u', source_ref_id: 'p' };
    // [component, queue, zod, data, whether the worker finds the envelope well-formed]
    const cases: [string, string, { safeParse(v: unknown): { success: boolean } }, unknown, boolean][] = [
      ['GrantsBatchJob', 'grants', grantsBatchJobSchema, { type: 'batch', events: [g, r] }, true],
      ['GrantsBatchJob', 'grants', grantsBatchJobSchema, { type: 'batch', events: [g, { ...g, amount: -1 }] }, true], // a bad member fails alone
      ['GrantsBatchJob', 'grants', grantsBatchJobSchema, { type: 'batch', events: [] }, false],
      ['GrantsBatchJob', 'grants', grantsBatchJobSchema, { type: 'batch', events: Array.from({ length: 1001 }, () => g) }, false],
      ['GrantsBatchJob', 'grants', grantsBatchJobSchema, { type: 'batch', events: [g, c] }, false],
      ['GrantsBatchJob', 'grants', grantsBatchJobSchema, { type: 'batch', events: [g], extra: 1 }, false],
      ['ChargesBatchJob', 'charges', chargesBatchJobSchema, { type: 'batch', events: [c, { type: 'refund', event_id: 'r-1', charge_event_id: 'c-1' }] }, true],
      ['ChargesBatchJob', 'charges', chargesBatchJobSchema, { type: 'batch', events: 'c' }, false],
      ['AffinityEventsBatchJob', 'affinity-events', affinityBatchJobSchema, { type: 'batch', events: [a, a] }, true],
      ['AffinityEventsBatchJob', 'affinity-events', affinityBatchJobSchema, { type: 'batch', events: [a, { type: 'batch', events: [a] }] }, false],
    ];
    for (const [name, queue, zod, data, envelopeOk] of cases) {
      const accepted = zod.safeParse(data).success;
      expect(check(name)(data), `${name} ${JSON.stringify(data).slice(0, 200)}`).toBe(accepted);
      // What the document accepts, the worker's envelope check accepts too (it then checks each member alone).
      expect(batchEnvelopeProblem(queue, data) === null, `${name} envelope ${JSON.stringify(data).slice(0, 200)}`).toBe(envelopeOk);
      if (accepted) expect(envelopeOk).toBe(true);
    }
  });

  it('the committed client types are what openapi-typescript makes of the live document (npm run client:types)', async () => {
    expect(await readFile(TYPES_FILE, 'utf8')).toBe(await renderClientTypes(doc));
  });

  it('GET /docs renders it (Swagger UI, no auth)', async () => {
    const res = await fetch(`${base}/docs`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('swagger-ui');
    // Read to the end: an unread 1.4 MB body holds its connection open (the server's writes wait on the client), and
    // app.close() in afterAll waited for it until the hook timed out (seen once under CPU stress).
    const bundle = await fetch(`${base}/docs/static/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
  });
});

describe('the typed client (tally/client)', () => {
  it('reads a balance, pages batches and places a hold through the document\'s types', async () => {
    const admin = createTallyClient({ baseUrl: base, token: ADMIN_TOKEN });
    const adjust = await admin.POST('/v1/admin/maintenance/{task}', { params: { path: { task: 'reconcile' } } });
    expect(adjust.response.status).toBe(200);
    const { data, error } = await client.GET('/v1/users/{user_id}/balances/{asset}', { params: { path: { user_id: 'tc-1', asset: 'points' } } });
    expect(error).toBeUndefined();
    expect(data).toEqual({ user_id: 'tc-1', asset: 'points', balance: 0, held: 0, available: 0, total_granted: 0, total_consumed: 0, total_expired: 0, overdrawn: false });
    const hold = await client.POST('/v1/holds', { body: { event_id: 'tc-h1', user_id: 'tc-1', asset: 'points', source_type: 'script', ttl_seconds: 60 } });
    expect(hold.response.status).toBe(402);
    expect(hold.error?.error.code).toBe('insufficient');
  });

  it('gets every error in the error shape, typed', async () => {
    const bad = await client.GET('/v1/users/{user_id}/transactions', { params: { path: { user_id: 'tc-1' }, query: { limit: 501 } } });
    expect(bad.response.status).toBe(400);
    expect(bad.error?.error.code).toBe('invalid_request');
    const anon = createTallyClient({ baseUrl: base });
    const refused = await anon.GET('/v1/users/{user_id}/batches', { params: { path: { user_id: 'tc-1' } } });
    expect(refused.response.status).toBe(401);
    expect(refused.error?.error.code).toBe('unauthorized');
  });
});
