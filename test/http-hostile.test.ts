import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/modules.ts';
import { EXAMPLE_CONFIG } from '../src/cli/dev.ts';
import { ADMIN_TOKEN, API_TOKEN, createWorld, type TestWorld } from './helpers/env.ts';
import { expectErrorShape } from './helpers/error-shape.ts';
import { head, rawExchange } from './helpers/raw-http.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;
let port: number;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world, ['api']);
  port = Number(new URL(tally.base).port);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

async function send(method: string, path: string, opts: { body?: string; type?: string; token?: string | null; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? API_TOKEN : opts.token;
  if (token) headers.authorization = `Bearer ${token}`;
  if (opts.type) headers['content-type'] = opts.type;
  const t0 = performance.now();
  const res = await fetch(`${tally.base}${path}`, { method, headers, body: opts.body });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the assertions say so
  }
  return { status: res.status, headers: res.headers, body, ms: performance.now() - t0 };
}

const manyKeysFlow = (n: number) => `{${Array.from({ length: n }, (_, i) => `k${i}: ${i}`).join(', ')}}`;
const manyKeysBlock = (n: number) => Array.from({ length: n }, (_, i) => `k${i}: ${i}`).join('\n');
const anchors = (n: number) => `assets:\n${Array.from({ length: n }, (_, i) => `  a${i}: &x${i} { default_expiry_days: 1 }`).join('\n')}\n`;
const LAUGHS = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
  .concat('bcdefgh'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(',')}]`))
  .join('\n');

describe('authentication comes before the body (issue 10 item 1)', () => {
  it('a request without a token is refused at its headers: 401 at once and the connection closed, the body never awaited', async () => {
    // 600 KB announced, nothing sent: an auth check after parsing would sit waiting for the body.
    const res = await rawExchange(port, (s) => {
      s.write(head(['PUT /v1/admin/config HTTP/1.1', 'Host: x', 'Content-Type: application/yaml', 'Content-Length: 600000']));
    }, 5000);
    expect(res.status).toBe(401);
    expectErrorShape(JSON.parse(res.body));
    expect(res.closed).toBe(true);
    expect(res.ms).toBeLessThan(3000);
  });

  it('a hostile 660 KB YAML behind a wrong token is answered 401 at once while /healthz stays responsive', async () => {
    const yaml = manyKeysFlow(50_000); // ~30 s of yaml's quadratic duplicate-key check, were it parsed
    const refused = send('PUT', '/v1/admin/config', { body: yaml, type: 'application/yaml', token: 'wrong-token-0123456789' });
    await new Promise((r) => setTimeout(r, 50));
    const health = await send('GET', '/healthz', { token: null });
    const r = await refused;
    expect(r.status).toBe(401);
    expectErrorShape(r.body);
    expect(health.status).toBe(200);
    expect(health.ms).toBeLessThan(3000);
    expect(r.ms).toBeLessThan(3000);
  });

  it('the API token on an admin route with a big body is a 403 before the body; Basic garbage is a 401', async () => {
    const big = JSON.stringify({ assets: Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`a${i}`, {}])) });
    const r = await send('PUT', '/v1/admin/config', { body: big, type: 'application/json', token: API_TOKEN });
    expect(r.status).toBe(403);
    expectErrorShape(r.body);
    for (const auth of ['Basic !!!!', 'Basic ', `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`, 'Bearer', 'Bearer  ', 'Digest x', 'Basic\u0000x']) {
      const g = await fetch(`${tally.base}/v1/users/u/balances/points`, { headers: { authorization: auth.replace('\u0000', '') } });
      expect(g.status, auth).toBe(401); // Basic is for the admin pages' browser login only
      expectErrorShape(await g.json(), auth);
    }
    const page = await fetch(`${tally.base}/admin/queues`, { headers: { authorization: 'Basic %%%%' } });
    expect(page.status).toBe(401);
  });
});

describe('YAML bodies are bounded (size, depth, aliases, keys)', () => {
  const yaml = (body: string) => send('PUT', '/v1/admin/config', { body, type: 'application/yaml', token: ADMIN_TOKEN });

  it('the example config still applies as YAML', async () => {
    const r = await yaml(await readFile(EXAMPLE_CONFIG, 'utf8'));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ changed: false });
  });

  it.each([
    ['more than 10k keys (yaml checks duplicates quadratically)', manyKeysBlock(20_000), 'more than 10000 YAML keys'],
    ['a billion laughs', LAUGHS, 'aliases expand'],
    ['50k-deep flow nesting (yaml overflows its stack near 800)', `${'['.repeat(50_000)}${']'.repeat(50_000)}`, 'nested deeper than 32'],
    ['300-deep block nesting', Array.from({ length: 300 }, (_, i) => `${' '.repeat(i)}k:`).join('\n'), 'nested deeper than 32'],
    ['a duplicate key', 'assets: {}\nassets: {}', 'duplicate YAML key'],
    ['a complex key', '? [a, b]\n: 1', 'plain values'],
    ['two documents', 'assets: {}\n---\nassets: {}', 'multiple documents'],
    ['not YAML at all', '{ unclosed: [', ''],
    ['an alias inside the list it names (answered 503 "retry" by the audit before)', 'a: &a [*a]', 'contains it'],
    ['an alias inside the map it names', 'assets: &m { points: *m }', 'contains it'],
  ])('%s: 400 invalid_yaml, quickly', async (_name, body, message) => {
    const r = await yaml(body);
    expect(r.status).toBe(400);
    expectErrorShape(r.body);
    expect((r.body as any).error.code).toBe('invalid_yaml');
    expect((r.body as any).error.message).toContain(message);
    expect(r.ms).toBeLessThan(3000);
  });

  it('4k anchors are parsed in linear time, then judged by the config rules', async () => {
    const r = await yaml(anchors(4000));
    expect(r.status).toBe(200); // 4000 assets is a valid (if odd) config
    expect(r.ms).toBeLessThan(3000);
    await world.applyExampleConfig();
  });

  it('more than 256 KiB of YAML is a 413', async () => {
    const r = await yaml(manyKeysFlow(50_000));
    expect(r.status).toBe(413);
    expectErrorShape(r.body);
  });
});

describe('JSON depth is bounded', () => {
  const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
  it.each([
    ['POST', '/v1/quotes', ADMIN_TOKEN],
    ['POST', '/v1/holds', ADMIN_TOKEN],
    ['POST', '/v1/orders', ADMIN_TOKEN],
    ['PUT', '/v1/admin/config', ADMIN_TOKEN],
    ['POST', '/v1/admin/affinity/adjust', ADMIN_TOKEN],
  ])('%s %s: 50k-deep JSON (bare and inside a field) is a 400, never a stack overflow', async (method, path, token) => {
    for (const body of [deep(50_000), `{"user_id":"u","usage":${deep(10_000)}}`, `{"metadata":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`]) {
      const r = await send(method, path, { body, type: 'application/json', token });
      expect(r.status).toBe(400);
      expectErrorShape(r.body);
      expect((r.body as any).error.code).toBe('invalid_json');
    }
  });

  it('the payment callback still authenticates first: a deep body with a bad signature is a 401', async () => {
    const r = await send('POST', '/v1/orders/o-1/paid', { body: deep(50_000), type: 'application/json', token: null, headers: { 'x-tally-signature': 'ab' } });
    expect(r.status).toBe(401);
    expect((await send('GET', '/healthz', { token: null })).status).toBe(200);
  });

  it('JSON with __proto__ or constructor.prototype keys is refused', async () => {
    for (const body of ['{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"polluted":1}}}']) {
      const r = await send('POST', '/v1/quotes', { body, type: 'application/json' });
      expect(r.status).toBe(400);
      expectErrorShape(r.body);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('every error answered has the error shape (contract v2 §4)', () => {
  it.each([
    ['GET', '/v1/nothing', 404, 'not_found', {}],
    ['GET', '/v1/quotes', 405, 'method_not_allowed', {}],
    ['DELETE', '/v1/users/u/balances/points', 405, 'method_not_allowed', {}],
    // Clients that label every request JSON send a bodiless DELETE so: no body, not bad JSON.
    ['DELETE', '/v1/users/u/balances/points', 405, 'method_not_allowed', { body: '', type: 'application/json' }],
    ['DELETE', '/v1/holds/h-nope', 404, 'unknown_hold', { body: '', type: 'application/json' }],
    ['GET', '/v1/products/', 404, 'not_found', {}],
    ['POST', '/v1/quotes/', 404, 'not_found', { body: '{}', type: 'application/json' }],
    ['GET', '/healthz/', 404, 'not_found', { token: null }],
    ['GET', '/docs/static/no-such-file.css', 404, 'not_found', { token: null }],
    ['POST', '/v1/quotes', 400, 'invalid_json', { body: '{"x":', type: 'application/json' }],
    ['POST', '/v1/quotes', 400, 'invalid_json', { body: '', type: 'application/json' }],
    ['POST', '/v1/quotes', 415, 'unsupported_media_type', { body: '<q/>', type: 'application/xml' }],
    ['POST', '/v1/quotes', 413, 'payload_too_large', { body: JSON.stringify({ pad: 'x'.repeat(1_100_000) }), type: 'application/json' }],
    ['POST', '/v1/quotes', 400, 'invalid_request', { body: '{"user_id":"u"}', type: 'application/json' }],
    ['POST', '/v1/quotes', 400, 'invalid_request', { body: '"just a string"', type: 'application/json' }],
    ['POST', '/v1/quotes', 400, 'invalid_request', { body: 'plain', type: 'text/plain' }],
    ['GET', '/v1/users/123/balances/points', 400, 'invalid_request', {}],
    ['GET', '/v1/users/%E0%A4%A/balances/points', 400, 'invalid_url', {}],
    ['GET', `/v1/users/${'a'.repeat(600)}/balances/points`, 400, 'invalid_request', {}],
    ['GET', '/v1/users/u/balances/points', 401, 'unauthorized', { token: null }],
    ['PUT', '/v1/admin/config', 403, 'forbidden', { body: '{}', type: 'application/json' }],
    ['GET', '/v1/stream', 401, 'unauthorized', { token: null }],
  ] as const)('%s %s → %i %s', async (method, path, status, code, opts) => {
    const r = await send(method, path, opts as never);
    expect(r.status).toBe(status);
    expectErrorShape(r.body);
    expect((r.body as any).error.code).toBe(code);
    if (status === 405) expect(r.headers.get('allow')).toMatch(/^[A-Z, ]+$/);
  });

  it('431 for oversized headers and 400 for malformed HTTP come from Node in the same shape', async () => {
    const huge = await rawExchange(port, (s) => void s.write(head(['GET /healthz HTTP/1.1', 'Host: x', `X-Big: ${'a'.repeat(20_000)}`])));
    expect(huge.status).toBe(431);
    expectErrorShape(JSON.parse(huge.body));
    const garbage = await rawExchange(port, (s) => void s.write('\u0000\u0001GARBAGE / HTTP/9.9\r\n\r\n'));
    expect(garbage.status).toBe(400);
    expectErrorShape(JSON.parse(garbage.body));
  });

  it('a cursor or limit that is malformed or out of range is a 400, never a 500 (issue 9 item 8)', async () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64url');
    const bad = [
      `/v1/users/u/transactions?cursor=${b64('e:9999999999999999999')}`, // 19 digits, past 2^63 − 1
      `/v1/users/u/transactions?cursor=${b64('e:99999999999999999999')}`,
      `/v1/users/u/transactions?cursor=${b64('b:1')}`, // a batches cursor
      `/v1/users/u/transactions?cursor=${b64('e:-1')}`,
      '/v1/users/u/transactions?cursor=%00',
      `/v1/users/u/batches?cursor=${b64('b:9223372036854775808')}`,
      `/v1/users/u/batches?cursor=${b64('e:1')}`,
      '/v1/users/u/transactions?limit=0',
      '/v1/users/u/transactions?limit=-1',
      '/v1/users/u/transactions?limit=1e308',
      '/v1/users/u/transactions?limit=501',
      '/v1/users/u/transactions?limit=abc',
      '/v1/users/u/transactions?limit=1&limit=2',
      '/v1/users/u/batches?limit=1.5',
      '/v1/users/u/transactions?unknown=1',
      '/v1/users/u/usage?window=1y',
    ];
    for (const path of bad) {
      const r = await send('GET', path);
      expect(r.status, path).toBe(400);
      expectErrorShape(r.body, path);
    }
    const ok = await send('GET', `/v1/users/u/transactions?cursor=${b64('e:9223372036854775807')}`);
    expect(ok.status).toBe(200);
  });
});
