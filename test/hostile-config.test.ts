import '../src/money/register.ts';
import '../src/affinity/register.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { affinitySettingsOf } from '../src/affinity/settings.ts';
import { ConfigInvalidError, parseConfigDocument } from '../src/config/document.ts';
import { applyConfig } from '../src/config/store.ts';
import { ADMIN_TOKEN, createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

/**
 * Config maps looked up by keys that come from events and requests (issue 10 item 2): `constructor`, `toString`,
 * `__proto__`, `valueOf`, `hasOwnProperty` must find only what the document declares, through every lookup path.
 */
const PROTO_KEYS = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__', '__defineGetter__', 'isPrototypeOf'];
// Of those, the ones that pass the id charset (ids have no `_`): only they get past the payload schema.
const ID_KEYS = PROTO_KEYS.filter((k) => !k.includes('_'));

let world: TestWorld;
let tally: InProcessTally;
let n = 0;
const id = (p: string) => `${p}-${++n}-${Date.now().toString(36)}`;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

/** Enqueues a raw job, as another language would, and waits for its result or its failure reason. */
async function run(queue: string, data: Record<string, unknown>): Promise<{ result?: any; failed?: string }> {
  const job = await tally.producer.queue(queue).add(String(data.type), data, { jobId: String(data.event_id), attempts: 1 });
  try {
    return { result: await tally.producer.result(queue, job, 20_000) };
  } catch (err) {
    return { failed: (err as Error).message };
  }
}

async function ledgerUntouched(): Promise<void> {
  const [row] = await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM accounts WHERE asset <> ALL(${['points', 'credits']}::text[])`;
  expect(row!.n).toBe(0);
}

describe('config lookups never fall through to Object.prototype', () => {
  it('grants into an asset named after an Object.prototype member fail invalid_payload and are dead-lettered', async () => {
    for (const asset of PROTO_KEYS) {
      const eventId = id('g-proto');
      const r = await run('grants', { type: 'grant', event_id: eventId, user_id: 'eve', asset, amount: 10, source: 'gift' });
      expect(r.failed, asset).toMatch(/^invalid_payload/);
      const [dl] = await world.sql`SELECT reason_code FROM dead_letters WHERE event_id = ${eventId}`;
      expect(dl, asset).toMatchObject({ reason_code: 'invalid_payload' });
    }
    await ledgerUntouched();
  });

  it('charges priced by such a source_type or model fail invalid_payload at once, without burning attempts', async () => {
    for (const key of ID_KEYS) {
      const bySource = await run('charges', { type: 'charge', event_id: id('c-src'), user_id: 'eve', asset: 'points', source_type: key, source_id: 's', usage: { seconds: 5 }, policy: 'postpaid' });
      expect(bySource.failed, key).toMatch(/^invalid_payload: no pricing for source_type/);
    }
    for (const model of PROTO_KEYS) {
      const byModel = await run('charges', {
        type: 'charge', event_id: id('c-model'), user_id: 'eve', asset: 'credits', source_type: 'llm', source_id: 's',
        usage: { model, input_tokens: 100, output_tokens: 100 }, policy: 'postpaid',
      });
      expect(byModel.failed, model).toMatch(/^invalid_payload: unknown model/);
    }
    const [row] = await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM ledger_entries WHERE user_id = 'eve'`;
    expect(row!.n).toBe(0);
  });

  it('a reward.event whose event_type is an Object.prototype member has no rule', async () => {
    for (const eventType of PROTO_KEYS) {
      const r = await run('grants', { type: 'reward.event', event_id: id('rw'), event_type: eventType, event_version: '1', receiver_user_id: 'eve', source_ref_id: 'p1' });
      expect(r.result, eventType).toMatchObject({ outcome: 'noop_no_rule' });
    }
    await ledgerUntouched();
  });

  it('an affinity.event whose rule_key is an Object.prototype member has no rule', async () => {
    for (const ruleKey of ID_KEYS) {
      const r = await run('affinity-events', { type: 'affinity.event', event_id: id('af'), user_id: 'eve', device_id: 'd1', rule_key: ruleKey, source: 'phone' });
      expect(r.result, ruleKey).toMatchObject({ outcome: 'noop_no_rule' });
    }
  });

  it('quotes and holds by such an asset, source_type or model answer 422, never 500', async () => {
    for (const key of PROTO_KEYS) {
      const byAsset = await tally.http('POST', '/v1/quotes', { user_id: 'eve', asset: key, source_type: 'tts', usage: { seconds: 1 } });
      expect([400, 422], `asset ${key}`).toContain(byAsset.status);
      const byModel = await tally.http('POST', '/v1/quotes', { user_id: 'eve', asset: 'credits', source_type: 'llm', usage: { model: key, input_tokens: 1, output_tokens: 1 } });
      expect(byModel, `model ${key}`).toMatchObject({ status: 422, body: { error: { code: 'invalid_usage' } } });
      const holdByModel = await tally.http('POST', '/v1/holds', {
        event_id: id('h'), user_id: 'eve', asset: 'credits', source_type: 'llm', usage_estimate: { model: key, input_tokens: 1, output_tokens: 1 }, ttl_seconds: 60,
      });
      expect(holdByModel, `hold model ${key}`).toMatchObject({ status: 422, body: { error: { code: 'invalid_usage' } } });
    }
    for (const key of ID_KEYS) {
      const bySource = await tally.http('POST', '/v1/quotes', { user_id: 'eve', asset: 'points', source_type: key, usage: { seconds: 1 } });
      expect(bySource, `source_type ${key}`).toMatchObject({ status: 422, body: { error: { code: 'unknown_source_type' } } });
      const holdBySource = await tally.http('POST', '/v1/holds', { event_id: id('h'), user_id: 'eve', asset: 'points', source_type: key, usage_estimate: { seconds: 1 }, ttl_seconds: 60 });
      expect(holdBySource, `hold source_type ${key}`).toMatchObject({ status: 422, body: { error: { code: 'unknown_source_type' } } });
      const holdByAsset = await tally.http('POST', '/v1/holds', { event_id: id('h'), user_id: 'eve', asset: key, source_type: 'llm', amount: 1, ttl_seconds: 60 });
      expect(holdByAsset, `hold asset ${key}`).toMatchObject({ status: 422, body: { error: { code: 'unknown_asset' } } });
    }
  });

  it('orders by such a sku answer 422 unknown_sku; pricing reads by such an asset never answer 500', async () => {
    for (const sku of PROTO_KEYS) {
      const r = await tally.http('POST', '/v1/orders', { user_id: 'eve', sku });
      expect(r, sku).toMatchObject({ status: 422, body: { error: { code: 'unknown_sku' } } });
    }
    for (const asset of ID_KEYS) {
      // The route is another module's (CONTRACT v2 §4): whatever it answers for an undeclared asset, never a 500
      // and never a pricing rule.
      const r = await tally.http('GET', `/v1/pricing/${asset}`);
      expect(r.status, asset).toBeLessThan(500);
      if (r.status === 200) expect(JSON.stringify(r.body), asset).not.toMatch(/"(mode|points|divisor|multiplier|models)"/);
    }
  });
});

describe('the config document refuses keys it cannot hold', () => {
  const base = { assets: { points: {} } };

  it('refuses __proto__ as a key at any depth, as JSON.parse and YAML deliver it', async () => {
    const docs = [
      '{"__proto__": {"assets": {"gold": {}}}}',
      '{"assets": {"points": {}, "__proto__": {}}}',
      '{"assets": {"points": {}}, "rewards": {"__proto__": {"versions": ["1"], "asset": "points", "amount": 1}}}',
      '{"assets": {"points": {}}, "pricing": {"points": {"llm": {"mode": "tokens", "models": {"__proto__": {"input_per_1k": 1, "output_per_1k": 1}}}}}}',
    ];
    for (const text of docs) {
      expect(() => parseConfigDocument(JSON.parse(text)), text).toThrow(/__proto__ is not allowed/);
      await expect(applyConfig(world.sql, JSON.parse(text)), text).rejects.toBeInstanceOf(ConfigInvalidError);
    }
    const r = await tally.http('PUT', '/v1/admin/config', JSON.parse(docs[2]!), ADMIN_TOKEN);
    expect(r.status).toBe(400);
  });

  it('a document without an affinity section still finds no rule called after an Object.prototype member', () => {
    const rules = affinitySettingsOf(parseConfigDocument(base)).rules;
    for (const key of ['constructor', 'toString', 'hasOwnProperty', 'valueOf']) expect(rules[key], key).toBeUndefined();
  });

  it('refuses sections naming an undeclared asset called after an Object.prototype member (level rewards, pricing, products, rewards)', () => {
    for (const asset of ID_KEYS) {
      expect(() => parseConfigDocument({ ...base, affinity: { levels: [{ level: 1, threshold: 0 }, { level: 2, threshold: 10, rewards: [{ asset, amount: 5 }] }] } })).toThrow(/not declared/);
      expect(() => parseConfigDocument({ ...base, pricing: { [asset]: { x: { mode: 'free' } } } })).toThrow(/not declared/);
      expect(() => parseConfigDocument({ ...base, products: { p: { asset, amount: 1, price_cents: 1 } } })).toThrow(/not declared/);
      expect(() => parseConfigDocument({ ...base, rewards: { r: { versions: ['1'], asset, amount: 1 } } })).toThrow(/not declared/);
    }
  });

  it('maps are null-prototype, defaults included, and a declared `constructor` asset is an ordinary asset', async () => {
    const empty = parseConfigDocument({});
    for (const map of [empty.assets, empty.pricing, empty.products, empty.rewards]) expect(Object.getPrototypeOf(map)).toBeNull();
    expect(Object.getPrototypeOf(parseConfigDocument({ affinity: {} }).affinity!.rules)).toBeNull();
    const doc = parseConfigDocument({ assets: { constructor: { default_expiry_days: null } }, pricing: { constructor: { toString: { mode: 'fixed', points: 3 } } } });
    expect(doc.assets.constructor).toEqual({ default_expiry_days: null });
    expect(doc.pricing.constructor!.toString).toEqual({ mode: 'fixed', points: 3 });
    expect(doc.pricing.constructor!.valueOf).toBeUndefined();
  });

  it('refuses control characters in free-form keys, and nesting deeper than any document needs', () => {
    expect(() => parseConfigDocument({ ...base, rewards: { 'a\u0000b': { versions: ['1'], asset: 'points', amount: 1 } } })).toThrow(/rewards\.a.b: Invalid key/);
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 50_000; i++) deep = { a: deep };
    expect(() => parseConfigDocument({ ...base, rewards: deep })).toThrow(/nested deeper/);
  });

  it('refuses affinity numbers its 32-bit integer columns cannot hold (a level of 2^31 would fail every transaction)', () => {
    const levels = (level: number, threshold: number) => ({ ...base, affinity: { levels: [{ level: 1, threshold: 0 }, { level, threshold }] } });
    expect(() => parseConfigDocument(levels(2 ** 31, 10))).toThrow(/levels/);
    expect(() => parseConfigDocument(levels(2, 2 ** 31))).toThrow(/levels/);
    expect(() => parseConfigDocument({ ...base, affinity: { settings: { global_daily_cap: 2 ** 31 } } })).toThrow(/global_daily_cap/);
    expect(parseConfigDocument(levels(2 ** 31 - 1, 2 ** 31 - 1)).affinity!.levels).toHaveLength(2);
  });

  it('leaves the books consistent', async () => {
    await expectInvariants(world.sql);
  });
});
