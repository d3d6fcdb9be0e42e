import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/modules.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;

const doc = {
  assets: { points: { default_expiry_days: 30 }, credits: { default_expiry_days: null } },
  pricing: { points: { script: { mode: 'fixed', points: 5 } } },
  affinity: { rules: { chat: { delta: 2 } }, levels: [{ level: 1, threshold: 0 }, { level: 2, threshold: 10 }] },
  products: {
    'credits-1000': { asset: 'credits', amount: 1000, price_cents: 990, original_price_cents: 1290 },
    'credits-50': { asset: 'credits', amount: 50, price_cents: 99 },
    'old-pack': { asset: 'credits', amount: 5, price_cents: 1, active: false },
  },
  webhooks: [{ id: 'billing', url: 'https://hooks.example.com/t?token=abc&x=1', secret: 'whsec-0123456789abcdef', events: ['alert'] }],
};

beforeAll(async () => {
  world = await createWorld();
  tally = await startTally(world, ['api', 'worker']);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

describe('catalogue reads, the config in force, orders, devices', () => {
  it('GET /v1/admin/config before any config is 404 no_config; after, {version, applied_at, document} with secrets redacted', async () => {
    const none = await tally.admin.GET('/v1/admin/config');
    expect(none.response.status).toBe(404);
    expect((none.error as any).error.code).toBe('no_config');
    await world.applyConfig(doc);
    const { data } = await tally.admin.GET('/v1/admin/config');
    expect(data!.version).toBe(1);
    expect(Date.parse(data!.applied_at)).not.toBeNaN();
    const hook = (data!.document as any).webhooks[0];
    expect(hook.secret).toBe('[redacted]');
    expect(hook.url).toBe('https://hooks.example.com/t?token=redacted&x=redacted');
    expect(JSON.stringify(data)).not.toContain('whsec-0123456789abcdef');
    expect(JSON.stringify(data)).not.toContain('abc');
    expect(data!.redacted.sort()).toEqual(['webhooks.0.secret', 'webhooks.0.url']);
    expect((data!.document as any).products['credits-50'].price_cents).toBe(99);
    expect((await tally.client.GET('/v1/admin/config')).response.status).toBe(403);
  });

  it('GET /v1/products: active products by sku, original_price_cents null when there is none', async () => {
    const { data } = await tally.client.GET('/v1/products');
    expect(data!.items).toEqual([
      { sku: 'credits-1000', asset: 'credits', amount: 1000, price_cents: 990, original_price_cents: 1290 },
      { sku: 'credits-50', asset: 'credits', amount: 50, price_cents: 99, original_price_cents: null },
    ]);
  });

  it('GET /v1/pricing/:asset: the rules in force; an asset without pricing has none; an unknown asset is 404', async () => {
    expect((await tally.client.GET('/v1/pricing/{asset}', { params: { path: { asset: 'points' } } })).data).toEqual({
      asset: 'points',
      config_version: 1,
      rules: { script: { mode: 'fixed', points: 5 } },
    });
    expect((await tally.client.GET('/v1/pricing/{asset}', { params: { path: { asset: 'credits' } } })).data!.rules).toEqual({});
    for (const asset of ['gold', 'constructor', '__proto__']) {
      const res = await tally.client.GET('/v1/pricing/{asset}', { params: { path: { asset } } });
      expect(res.response.status, asset).toBe(asset === '__proto__' ? 404 : 404);
    }
  });

  it('GET /v1/users/:user_id/orders pages newest first, each order once; a forged cursor is 400', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const { data } = await tally.client.POST('/v1/orders', { body: { user_id: 'buyer', sku: i % 2 ? 'credits-50' : 'credits-1000' } });
      ids.push(data!.order_id);
    }
    await tally.client.POST('/v1/orders', { body: { user_id: 'someone-else', sku: 'credits-50' } });
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const { data } = await tally.client.GET('/v1/users/{user_id}/orders', { params: { path: { user_id: 'buyer' }, query: { limit: 3, cursor } } });
      seen.push(...data!.items.map((o) => o.order_id));
      cursor = data!.next_cursor ?? undefined;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());
    for (const bad of ['garbage!', Buffer.from('e:12').toString('base64url'), Buffer.from('o:bad id').toString('base64url')]) {
      const res = await tally.http('GET', `/v1/users/buyer/orders?cursor=${encodeURIComponent(bad)}`);
      expect(res.status, bad).toBe(400);
    }
    expect((await tally.http('GET', '/v1/users/buyer/orders?limit=501')).status).toBe(400);
    expect((await tally.client.GET('/v1/users/{user_id}/orders', { params: { path: { user_id: 'nobody' } } })).data).toEqual({ items: [], next_cursor: null });
  });

  it('PUT/GET /v1/admin/users/:u/devices/:d: a deactivated device\'s events answer noop_device_inactive; reactivated, they count again', async () => {
    const path = { user_id: 'dev-u', device_id: 'dev-1' };
    expect((await tally.admin.GET('/v1/admin/users/{user_id}/devices/{device_id}', { params: { path } })).data).toEqual({ active: true, value: 0, level: 1 });
    const off = await tally.admin.PUT('/v1/admin/users/{user_id}/devices/{device_id}', { params: { path }, body: { active: false } });
    expect(off.data).toEqual({ active: false, value: 0, level: 1 });
    const ev = (id: string) => ({ type: 'affinity.event', event_id: id, user_id: 'dev-u', device_id: 'dev-1', rule_key: 'chat', source: 't' });
    const r1 = await tally.client.POST('/v1/events', { params: { query: { wait: 'true' } }, body: { events: [ev('dv-1')] as never } });
    expect((r1.data as any).results[0].outcome).toBe('noop_device_inactive');
    await tally.admin.PUT('/v1/admin/users/{user_id}/devices/{device_id}', { params: { path }, body: { active: true } });
    const r2 = await tally.client.POST('/v1/events', { params: { query: { wait: 'true' } }, body: { events: [ev('dv-2')] as never } });
    expect((r2.data as any).results[0]).toMatchObject({ outcome: 'applied', after: 2 });
    expect((await tally.admin.GET('/v1/admin/users/{user_id}/devices/{device_id}', { params: { path } })).data).toEqual({ active: true, value: 2, level: 1 });
    expect((await tally.client.PUT('/v1/admin/users/{user_id}/devices/{device_id}', { params: { path }, body: { active: false } })).response.status).toBe(403);
    expect((await tally.http('PUT', '/v1/admin/users/dev-u/devices/dev-1', { active: 'no' }, 'test-admin-token-0123456789')).status).toBe(400);
    const audited = await world.sql`SELECT 1 FROM admin_audit WHERE action = 'PUT /v1/admin/users/:user_id/devices/:device_id'`;
    expect(audited.length).toBeGreaterThanOrEqual(2);
  });
});
