import fc from 'fast-check';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConfigInvalidError, parseConfigDocument } from '../src/config/document.ts';
import { refusedAddressReason } from '../src/webhooks/address-policy.ts';
import { deliveryId, planDeliveries, retryDelayMs } from '../src/webhooks/delivery.ts';
import { postOnce } from '../src/webhooks/http-post.ts';
import { signatureHeader, verifySignature } from '../src/webhooks/signature.ts';
import { stripeStyleVerify } from './helpers/webhook-receiver.ts';

describe('webhooks: address policy', () => {
  it.each([
    ['127.0.0.1', 'loopback'], ['127.255.255.254', 'loopback'], ['10.0.0.1', 'private'], ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'], ['192.168.0.1', 'private'], ['169.254.169.254', 'link-local'], ['100.64.0.1', 'carrier-grade'],
    ['100.127.255.255', 'carrier-grade'], ['0.0.0.0', 'unspecified'], ['224.0.0.251', 'multicast'], ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'], ['::', 'unspecified'], ['::1', 'loopback'], ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback'], ['::ffff:a9fe:a9fe', 'IPv4-mapped link-local'], ['::ffff:10.1.1.1', 'IPv4-mapped private'],
    ['::127.0.0.1', 'IPv4-compatible'], ['64:ff9b::10.0.0.1', 'NAT64 private'], ['2002:c0a8:0101::1', '6to4 private'],
    ['fe80::1', 'link-local'], ['fe80::1%lo', 'link-local'], ['fc00::1', 'unique-local'], ['fdff:ffff::1', 'unique-local'],
    ['ff02::1', 'multicast'], ['2001:db8::1', 'documentation'], ['[::1]', 'loopback'],
  ])('refuses %s (%s)', (addr, reason) => {
    expect(refusedAddressReason(addr)).toContain(reason);
  });

  it.each(['8.8.8.8', '1.1.1.1', '100.63.255.255', '100.128.0.0', '172.15.255.255', '172.32.0.0', '192.169.0.1', '2606:4700::1111', '2a00:1450::1', '::ffff:8.8.8.8', '64:ff9b::8.8.8.8'])(
    'allows the public address %s',
    (addr) => expect(refusedAddressReason(addr)).toBeNull(),
  );

  const octets = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
  it('refuses an IPv4 address exactly when its IPv4-mapped IPv6 forms are refused', () => {
    fc.assert(
      fc.property(octets, ([a, b, c, d]) => {
        const v4 = `${a}.${b}.${c}.${d}`;
        const hex = `::ffff:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
        const refused = refusedAddressReason(v4) !== null;
        expect(refusedAddressReason(`::ffff:${v4}`) !== null).toBe(refused);
        expect(refusedAddressReason(hex) !== null).toBe(refused);
        expect(refusedAddressReason(`[${hex}]`) !== null).toBe(refused);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses every address of 10/8, 127/8, 169.254/16, 172.16/12, 192.168/16 and 100.64/10, whatever the URL spelling', () => {
    const inRange = fc.oneof(
      fc.tuple(fc.constant(10), fc.nat(255), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(127), fc.nat(255), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(169), fc.constant(254), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(172), fc.integer({ min: 16, max: 31 }), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(192), fc.constant(168), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(100), fc.integer({ min: 64, max: 127 }), fc.nat(255), fc.nat(255)),
    );
    fc.assert(
      fc.property(inRange, fc.nat(3), ([a, b, c, d], spelling) => {
        const n = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
        const host = [`${a}.${b}.${c}.${d}`, String(n), `0${a.toString(8)}.${b}.${c}.${d}`, `0x${n.toString(16)}`][spelling]!;
        const hostname = new URL(`http://${host}:8080/`).hostname; // what the worker checks: the WHATWG-normalised host
        expect(refusedAddressReason(hostname)).not.toBeNull();
      }),
      { numRuns: 2000 },
    );
  });
});

describe('webhooks: POST attempts', () => {
  const body = '{}';
  it('refuses a host name that resolves to a private or metadata address (decided before any connection: no timeout, no network error)', async () => {
    for (const address of ['169.254.169.254', '10.0.0.7', '::ffff:192.168.1.1', 'fd00::5']) {
      const r = await postOnce(new URL('http://hooks.example.test/x'), body, {}, {
        timeoutMs: 2000,
        allowPrivate: false,
        resolver: async () => [{ address, family: address.includes(':') ? 6 : 4 }],
      });
      expect(r.result).toBe('refused');
      expect((r as { message: string }).message).toContain(address);
    }
  });

  it('refuses a name when any of its addresses is private (no picking the public one to dodge rebinding)', async () => {
    const server = createServer((_q, s) => s.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    let hits = 0;
    server.on('request', () => hits++);
    const r = await postOnce(new URL(`http://mixed.example.test:${port}/`), body, {}, {
      timeoutMs: 2000,
      allowPrivate: false,
      resolver: async () => [{ address: '127.0.0.1', family: 4 }, { address: '8.8.8.8', family: 4 }],
    });
    expect(r.result).toBe('refused');
    // With allow_private_network the same answer is used as is: the loopback receiver gets it.
    const ok = await postOnce(new URL(`http://mixed.example.test:${port}/`), body, {}, { timeoutMs: 2000, allowPrivate: true, resolver: async () => [{ address: '127.0.0.1', family: 4 }] });
    expect(ok.result).toBe('delivered');
    expect(hits).toBe(1);
    server.close();
  });

  it('times out a receiver that accepts the connection but never answers', async () => {
    const server = createServer(() => {});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const r = await postOnce(new URL(`http://127.0.0.1:${port}/`), body, {}, { timeoutMs: 300, allowPrivate: true });
    expect(r.result).toBe('timeout');
    server.closeAllConnections();
    server.close();
  });

  it('reports a refused connection as a network failure', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise((r) => server.close(r));
    const r = await postOnce(new URL(`http://127.0.0.1:${port}/`), body, {}, { timeoutMs: 2000, allowPrivate: true });
    expect(r).toMatchObject({ result: 'network' });
  });
});

describe('webhooks: signatures', () => {
  const secret = 'whsec-0123456789abcdef';
  const payload = JSON.stringify({ id: 'ob-1', type: 'alert', ts: '2026-01-01T00:00:00.000Z', user_id: 'u', data: { kind: 'overdrawn', asset: 'points' } });

  it('verifies with a Stripe-style verifier, and refuses tampering, another secret and stale timestamps', () => {
    const header = signatureHeader(secret, payload);
    expect(stripeStyleVerify(secret, header, payload)).toBe('ok');
    expect(verifySignature(secret, header, payload)).toBeNull();
    expect(stripeStyleVerify(secret, header, payload.replace('points', 'credits'))).toBe('bad_signature');
    expect(verifySignature('another-secret-0123456789', header, payload)).toBe('no_matching_signature');
    const old = signatureHeader(secret, payload, new Date(Date.now() - 301_000));
    expect(stripeStyleVerify(secret, old, payload)).toBe('too_old');
    expect(verifySignature(secret, old, payload)).toBe('timestamp_outside_tolerance');
    expect(verifySignature(secret, 'v1=abc', payload)).toBe('malformed_header');
  });

  it('signs any body so that exactly that body verifies', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ minLength: 16, maxLength: 64 }), (text, key) => {
        const header = signatureHeader(key, text);
        expect(stripeStyleVerify(key, header, text)).toBe('ok');
        expect(verifySignature(key, header, `${text} `)).toBe('no_matching_signature');
      }),
      { numRuns: 300 },
    );
  });
});

describe('webhooks: fan-out plan and retry schedule', () => {
  const hook = (id: string, events: string[]) => ({ id, url: 'https://example.test/h', secret: 'x'.repeat(16), events, allow_private_network: false }) as never;
  it('plans one delivery per (event, webhook listing its type), with injective ids', () => {
    const events = [
      { id: 'ob-1', type: 'alert', ts: '', user_id: 'u', data: {} },
      { id: 'ob-2', type: 'level_up', ts: '', user_id: 'u', data: {} },
    ] as const;
    const plan = planDeliveries([hook('a', ['alert']), hook('b', ['alert', 'level_up']), hook('c', ['balance_changed'])], events as never);
    expect(plan.map((d) => `${d.webhook_id}/${d.event.id}`)).toEqual(['a/ob-1', 'b/ob-1', 'b/ob-2']);
    expect(deliveryId('a.b', 'c')).not.toBe(deliveryId('a', 'b.c'));
    expect(deliveryId('a', 'ob-1')).toMatch(/^whd-[0-9a-f]{40}$/);
  });

  it('backs off exponentially with jitter, capped, deterministic per delivery and attempt', () => {
    const p = { baseMs: 30_000, maxMs: 3_600_000, windowMs: 86_400_000 };
    const delays = Array.from({ length: 12 }, (_, i) => retryDelayMs(i + 1, 'whd-x', p));
    delays.forEach((d, i) => {
      const nominal = Math.min(p.maxMs, p.baseMs * 2 ** i);
      expect(d).toBeGreaterThanOrEqual(nominal * 0.75 - 1);
      expect(d).toBeLessThanOrEqual(nominal * 1.25 + 1);
    });
    expect(retryDelayMs(3, 'whd-x', p)).toBe(delays[2]);
    // Over a 24 h window this schedule makes ~30 attempts: 8 doublings, then hourly.
    let t = 0;
    let n = 1;
    while (t + retryDelayMs(n, 'whd-x', p) <= p.windowMs) t += retryDelayMs(n++, 'whd-x', p);
    expect(n).toBeGreaterThan(20);
    expect(n).toBeLessThan(40);
  });
});

describe('config: alerts and webhooks', () => {
  const base = { assets: { points: {}, credits: { default_expiry_days: null } } };
  const good = {
    ...base,
    alerts: { low_balance: [{ asset: 'credits', below: 100 }], expiring_soon: [{ asset: 'points', within_days: 7, min_amount: 1 }], overdrawn: [{ asset: 'points' }] },
    webhooks: [{ id: 'billing', url: 'http://127.0.0.1:9000/hook', secret: 'a-secret-of-16+ch', events: ['alert', 'level_up', 'balance_changed'], allow_private_network: true }],
  };
  const refused = (doc: unknown, pattern: RegExp) => {
    expect(() => parseConfigDocument(doc)).toThrow(ConfigInvalidError);
    expect(() => parseConfigDocument(doc)).toThrow(pattern);
  };

  it('accepts the contract example and fills defaults', () => {
    const doc = parseConfigDocument(good);
    expect(doc.webhooks[0]!.allow_private_network).toBe(true);
    expect(parseConfigDocument(base).alerts).toEqual({ low_balance: [], expiring_soon: [], overdrawn: [] });
    expect(parseConfigDocument(base).webhooks).toEqual([]);
    const noFlag = parseConfigDocument({ ...base, webhooks: [{ ...good.webhooks[0], allow_private_network: undefined }] });
    expect(noFlag.webhooks[0]!.allow_private_network).toBe(false);
  });

  it.each([
    ['an undeclared asset', { alerts: { low_balance: [{ asset: 'gems', below: 1 }] } }, /alerts\.low_balance\.0\.asset: asset gems is not declared/],
    ['an inherited property name as asset', { alerts: { overdrawn: [{ asset: 'constructor' }] } }, /asset constructor is not declared/],
    ['__proto__ as asset', { alerts: { overdrawn: [{ asset: '__proto__' }] } }, /asset __proto__ is not declared/],
    ['a zero threshold', { alerts: { low_balance: [{ asset: 'credits', below: 0 }] } }, /below/],
    ['a fractional threshold', { alerts: { low_balance: [{ asset: 'credits', below: 1.5 }] } }, /below/],
    ['a threshold past 2^53', { alerts: { low_balance: [{ asset: 'credits', below: 1e308 }] } }, /below/],
    ['an unknown alert kind', { alerts: { low_ballance: [] } }, /low_ballance/],
    ['an unknown field', { alerts: { overdrawn: [{ asset: 'points', extra: 1 }] } }, /extra/],
    ['within_days 0', { alerts: { expiring_soon: [{ asset: 'points', within_days: 0 }] } }, /within_days/],
    ['a duplicate rule', { alerts: { overdrawn: [{ asset: 'points' }, { asset: 'points' }] } }, /appears twice/],
    ['an unknown event type', { webhooks: [{ ...good.webhooks[0], events: ['alert', 'charge'] }] }, /events/],
    ['no event types', { webhooks: [{ ...good.webhooks[0], events: [] }] }, /events/],
    ['a repeated event type', { webhooks: [{ ...good.webhooks[0], events: ['alert', 'alert'] }] }, /listed twice/],
    ['a short secret', { webhooks: [{ ...good.webhooks[0], secret: 'short' }] }, /at least 16/],
    ['a padded secret', { webhooks: [{ ...good.webhooks[0], secret: ' a-secret-of-16+ch' }] }, /whitespace/],
    ['an ftp url', { webhooks: [{ ...good.webhooks[0], url: 'ftp://example.com/x' }] }, /http or https/],
    ['a file url', { webhooks: [{ ...good.webhooks[0], url: 'file:///etc/passwd' }] }, /http or https/],
    ['a relative url', { webhooks: [{ ...good.webhooks[0], url: '/hook' }] }, /absolute URL/],
    ['credentials in the url', { webhooks: [{ ...good.webhooks[0], url: 'https://user:pw@example.com/x' }] }, /credentials/],
    ['a duplicate webhook id', { webhooks: [good.webhooks[0], { ...good.webhooks[0] }] }, /appears twice/],
    ['a non-boolean allow_private_network', { webhooks: [{ ...good.webhooks[0], allow_private_network: 'yes' }] }, /allow_private_network/],
    ['a bad webhook id', { webhooks: [{ ...good.webhooks[0], id: 'a b' }] }, /webhooks\.0\.id/],
  ])('refuses %s', (_what, extra, pattern) => {
    refused({ ...base, ...extra }, pattern);
  });
});
