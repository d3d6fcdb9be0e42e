import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/modules.ts';
import { ADMIN_TOKEN, createWorld, PAYMENT_SECRET, type TestWorld } from './helpers/env.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;
let operations: { method: string; path: string; op: any }[] = [];

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world, ['api', 'worker']); // the admin adjust waits for its job
  const doc = await (await fetch(`${tally.base}/openapi.json`)).json();
  // Every documented /v1 operation, straight from the document: a route added later is fuzzed too.
  operations = Object.entries<any>(doc.paths)
    .filter(([path]) => path.startsWith('/v1/'))
    .flatMap(([path, ops]) => Object.entries<any>(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, op })));
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

const nasty = fc.constantFrom(
  '__proto__', 'constructor', 'toString', 'prototype', 'hasOwnProperty', 'valueOf', '\u0000', 'a\u0000b', '\u001f', '1e308', '-1e308',
  'NaN', 'Infinity', '9223372036854775808', '99999999999999999999', '0', '-0', '', ' ', '..', '%', '%00', 'null', 'true', '{}', '[]',
  "' OR 1=1 --", '$1', '💥', '\uFFFF', '\uD800', 'a'.repeat(129), 'a'.repeat(600), 'points', 'credits', 'llm', 'tts', 'script',
  'gpt-4o-mini', 'credits-1000', 'chat', 'reconcile', 'expire',
);
const hostileString = fc.oneof(nasty, fc.string({ maxLength: 24 }), fc.string({ unit: 'binary', maxLength: 24 }), fc.stringMatching(/^[A-Za-z][A-Za-z0-9._@-]{0,12}$/));
const hostileNumber = fc.oneof(
  fc.constantFrom(1e308, -1e308, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 2 ** 63, 2 ** 31, -(2 ** 31) - 1, 0, -0, 0.5, -1, 5e-324, 1, 60, 1000),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const leaf = fc.oneof(hostileString, hostileNumber, fc.boolean(), fc.constant(null));
const { value: hostileValue } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(hostileString, tie('value'), { maxKeys: 4 }),
  ),
}));
/** Deeper than any body may nest, as text (the test's own JSON.stringify would overflow on the value). */
const tooDeep = fc.integer({ min: 65, max: 50_000 }).map((n) => `{"user_id":${'['.repeat(n)}1${']'.repeat(n)}}`);

/** A body shaped like the documented one (known fields, each plausible or hostile), or anything at all. */
function bodyFor(op: any): fc.Arbitrary<string> {
  const schema = op.requestBody?.content?.['application/json']?.schema;
  const props: string[] = Object.keys(schema?.properties ?? {});
  const shaped = fc.record(Object.fromEntries(props.map((p) => [p, fc.oneof(leaf, hostileValue)])), { requiredKeys: [] });
  const json = (a: fc.Arbitrary<unknown>) => a.map((v) => JSON.stringify(v) ?? 'null');
  return fc.oneof({ weight: 4, arbitrary: json(shaped) }, { weight: 2, arbitrary: json(hostileValue) }, { weight: 1, arbitrary: tooDeep });
}

/** encodeURIComponent, except that a lone surrogate goes out as its (replacement) UTF-8 bytes instead of throwing. */
function encode(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return [...Buffer.from(s)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  }
}

function requestFor(o: { method: string; path: string; op: any }) {
  const pathParams = [...o.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  const queryParams: string[] = (o.op.parameters ?? []).filter((p: any) => p.in === 'query').map((p: any) => p.name);
  return fc.record({
    path: fc.tuple(...pathParams.map(() => hostileString)).map((values) => pathParams.reduce((p, name, i) => p.replace(`{${name}}`, encode(values[i] as string)), o.path)),
    query: fc.dictionary(fc.oneof(fc.constantFrom(...(queryParams.length ? queryParams : ['x'])), hostileString), hostileString, { maxKeys: 3 }),
    body: o.op.requestBody ? bodyFor(o.op) : fc.constant(undefined),
    signed: fc.boolean(),
  });
}

describe('fuzzing every documented /v1 route with hostile params and bodies', () => {
  it('never answers 5xx, and every error has the error shape', async () => {
    expect(operations.length).toBeGreaterThanOrEqual(16);
    for (const o of operations) {
      await fc.assert(
        fc.asyncProperty(requestFor(o), async (req) => {
          const qs = new URLSearchParams(Object.entries(req.query)).toString();
          const headers: Record<string, string> = { authorization: `Bearer ${ADMIN_TOKEN}` };
          if (req.body !== undefined) headers['content-type'] = 'application/json';
          if (o.op.security?.[0]?.paymentSignature && req.signed) {
            headers['x-tally-signature'] = createHmac('sha256', PAYMENT_SECRET).update(req.body ?? '').digest('hex');
          }
          const res = await fetch(`${tally.base}${req.path}${qs ? `?${qs}` : ''}`, { method: o.method, headers, body: req.body });
          const text = await res.text();
          const what = `${o.method} ${req.path}?${qs} ${req.body?.slice(0, 300)} → ${res.status} ${text.slice(0, 300)}`;
          expect(res.status, what).toBeLessThan(500);
          if (res.status >= 400) {
            const body = JSON.parse(text);
            expect(Object.keys(body), what).toEqual(['error']);
            expect(body.error.code, what).toMatch(/^[a-z_]+$/);
            expect(body.error.message, what).toBeTypeOf('string');
          }
        }),
        { numRuns: 60 },
      );
    }
    expect((await fetch(`${tally.base}/healthz`)).status).toBe(200);
  });
});
