import '../src/modules.ts'; // the webhooks worker and the job-stats sink register here, as the CLI loads them
import type { Job, Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDeadDeliveries, replayDeadDeliveries } from '../src/webhooks/dead.ts';
import { deliveryId, WEBHOOKS_QUEUE, type DeliveryJob, type WebhookEvent } from '../src/webhooks/delivery.ts';
import { enqueueDeliveries } from '../src/webhooks/enqueue.ts';
import { readJobStats, flushJobStats } from '../src/ops/job-stats.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { spawnTally, startTally, waitFor, type InProcessTally } from './helpers/tally.ts';
import { once } from 'node:events';
import { startReceiver, type Receiver } from './helpers/webhook-receiver.ts';

const SECRET = 'whsec-test-0123456789abcdef';
let world: TestWorld;
let tally: InProcessTally;
let queue: Queue;
const receivers: Receiver[] = [];

async function receiver(...args: Parameters<typeof startReceiver>): Promise<Receiver> {
  const r = await startReceiver(...args);
  receivers.push(r);
  return r;
}

let seq = 0;
function event(type: WebhookEvent['type'] = 'alert', data: Record<string, unknown> = { kind: 'low_balance', asset: 'credits', balance: 42, threshold: 100 }): WebhookEvent {
  return { id: `ob-${Date.now()}${++seq}`, type, ts: new Date().toISOString(), user_id: `u-${seq}`, data };
}

/** Applies a config with exactly these webhooks (the worker reads the config in force per attempt). */
async function useWebhooks(webhooks: object[]): Promise<void> {
  await world.applyConfig({ assets: { credits: { default_expiry_days: null } }, webhooks });
}

async function jobState(id: string): Promise<{ state: string; job: Job<DeliveryJob> | undefined }> {
  const job = (await queue.getJob(id)) as Job<DeliveryJob> | undefined;
  return { state: job ? await job.getState() : 'missing', job };
}

beforeAll(async () => {
  world = await createWorld({
    // Small settings so retries and the 24 h window play out in seconds.
    TALLY_WEBHOOK_BACKOFF_MS: '50',
    TALLY_WEBHOOK_BACKOFF_MAX_MS: '200',
    TALLY_WEBHOOK_RETRY_SECONDS: '3',
    TALLY_WEBHOOK_TIMEOUT_MS: '2000',
    TALLY_WEBHOOK_CONCURRENCY: '8',
    TALLY_WEBHOOK_PER_ENDPOINT: '2',
  });
  await useWebhooks([]);
  tally = await startTally(world, ['worker']);
  queue = tally.started.ctx.producer.queue(WEBHOOKS_QUEUE);
});

afterAll(async () => {
  await tally?.stop();
  await Promise.all(receivers.map((r) => r.close()));
  await world?.drop();
});

describe('webhooks: delivery', () => {
  it('POSTs {id, type, ts, user_id, data} signed the Stripe way, with a delivery id header, and completes on 2xx', async () => {
    const rx = await receiver(SECRET);
    await useWebhooks([{ id: 'billing', url: rx.url, secret: SECRET, events: ['alert', 'balance_changed'], allow_private_network: true }]);
    const e = event();
    const other = event('level_up', { device_id: 'd1', old_level: 1, new_level: 2, rewards: [] }); // not subscribed
    expect(await enqueueDeliveries(tally.started.ctx, [e, other])).toEqual({ deliveries: 1 });
    await waitFor('delivery', async () => rx.received.length === 1);
    const got = rx.received[0]!;
    expect(got.verified).toBe('ok');
    expect(got.body).toBe(JSON.stringify({ id: e.id, type: e.type, ts: e.ts, user_id: e.user_id, data: e.data }));
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['x-tally-delivery-id']).toBe(deliveryId('billing', e.id));
    expect(got.headers['x-tally-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    const id = deliveryId('billing', e.id);
    await waitFor('completed', async () => (await jobState(id)).state === 'completed');
    expect((await jobState(id)).job!.returnvalue).toMatchObject({ outcome: 'delivered', status: 200 });
  });

  it('enqueues a delivery once however often the fan-out repeats it (the job id is the delivery id)', async () => {
    const rx = await receiver(SECRET, () => ({ status: 204 }));
    await useWebhooks([{ id: 'dup', url: rx.url, secret: SECRET, events: ['alert'], allow_private_network: true }]);
    const e = event();
    await Promise.all([enqueueDeliveries(tally.started.ctx, [e]), enqueueDeliveries(tally.started.ctx, [e])]);
    await waitFor('completed', async () => (await jobState(deliveryId('dup', e.id))).state === 'completed');
    await enqueueDeliveries(tally.started.ctx, [e]);
    await new Promise((r) => setTimeout(r, 300));
    expect(rx.received).toHaveLength(1);
  });

  it('retries after 500s with backoff, signing each attempt anew, until a 2xx', async () => {
    const rx = await receiver(SECRET, (r) => ({ status: r.n <= 2 ? 500 : 200 }));
    await useWebhooks([{ id: 'flaky', url: rx.url, secret: SECRET, events: ['alert'], allow_private_network: true }]);
    const e = event();
    const id = deliveryId('flaky', e.id);
    await enqueueDeliveries(tally.started.ctx, [e]);
    await waitFor('completed', async () => (await jobState(id)).state === 'completed');
    expect(rx.received.map((r) => r.verified)).toEqual(['ok', 'ok', 'ok']);
    expect(new Set(rx.received.map((r) => r.headers['x-tally-delivery-id']))).toEqual(new Set([id]));
    expect(rx.received.map((r) => r.headers['x-tally-attempt'])).toEqual(['1', '2', '3']);
    // Backoff: the second retry waits longer than nothing (50 ms base, ±25 %).
    expect(rx.received[1]!.at - rx.received[0]!.at).toBeGreaterThanOrEqual(30);
    const { job } = await jobState(id);
    expect(job!.attemptsMade).toBe(3); // BullMQ counts the attempt that completed too
  });

  it('treats a redirect as a failure and never follows it', async () => {
    const target = await receiver(SECRET);
    const rx = await receiver(SECRET, () => ({ status: 302, headers: { location: target.url } }));
    await useWebhooks([{ id: 'redirects', url: rx.url, secret: SECRET, events: ['alert'], allow_private_network: true }]);
    const e = event();
    await enqueueDeliveries(tally.started.ctx, [e]);
    await waitFor('two attempts', async () => rx.received.length >= 2);
    expect(target.received).toHaveLength(0);
    const { job } = await jobState(deliveryId('redirects', e.id));
    expect(job!.failedReason ?? job!.stacktrace?.join('')).toMatch(/redirect/);
    await useWebhooks([]); // stop it retrying
  });

  it('gives up after the retry window: the delivery is dead, listed, and replayable', async () => {
    const rx = await receiver(SECRET, () => ({ status: 503 }));
    await useWebhooks([{ id: 'down', url: rx.url, secret: SECRET, events: ['alert'], allow_private_network: true }]);
    const e = event();
    const id = deliveryId('down', e.id);
    await enqueueDeliveries(tally.started.ctx, [e]);
    await waitFor('dead', async () => (await jobState(id)).state === 'failed', 20_000);
    const { job } = await jobState(id);
    expect(job!.failedReason).toMatch(/^dead: no 2xx after \d+ attempts; last http_status: receiver answered 503/);
    expect(rx.received.length).toBeGreaterThanOrEqual(3);
    const dead = await listDeadDeliveries(queue, { webhookId: 'down' });
    expect(dead.items.map((d) => d.delivery_id)).toEqual([id]);
    expect(JSON.stringify(dead)).not.toContain(e.user_id); // the listing carries no payloads
    // The operator's way: `tally webhooks dead` prints the same list as JSON.
    const cli = spawnTally(world, ['webhooks', 'dead', '--webhook', 'down']);
    let out = '';
    cli.stdout!.on('data', (d) => (out += d));
    const [code] = (await once(cli, 'exit')) as [number];
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ task: 'webhooks dead', items: [{ delivery_id: id, webhook_id: 'down', event_id: e.id, event_type: 'alert' }] });

    const before = rx.received.length;
    rx.setBehaviour(() => ({ status: 200 }));
    expect(await replayDeadDeliveries(queue, { ids: [id, 'whd-not-a-dead-one'] })).toEqual({ replayed: [id], not_dead: ['whd-not-a-dead-one'] });
    await waitFor('replayed delivery', async () => (await jobState(id)).state === 'completed');
    expect(rx.received.length).toBe(before + 1);
    expect(rx.received.at(-1)!.headers['x-tally-delivery-id']).toBe(id);
    expect((await listDeadDeliveries(queue, { webhookId: 'down' })).items).toEqual([]);
  });

  it('fails a delivery for a webhook that left the config at once (dead, replayable once it is back)', async () => {
    await useWebhooks([]);
    const e = event();
    const rx = await receiver(SECRET);
    const hook = { id: 'gone', url: rx.url, secret: SECRET, events: ['alert'], allow_private_network: true };
    await enqueueDeliveries(tally.started.ctx, [e], [hook as never]);
    const id = deliveryId('gone', e.id);
    await waitFor('dead', async () => (await jobState(id)).state === 'failed');
    expect((await jobState(id)).job!.failedReason).toMatch(/^unknown_webhook/);
    await useWebhooks([hook]);
    await replayDeadDeliveries(queue, { webhookId: 'gone' });
    await waitFor('delivered after replay', async () => rx.received.length === 1);
  });

  it('keeps a slow receiver from holding up another (per-endpoint slots)', async () => {
    const slow = await receiver(SECRET, () => ({ status: 200, delayMs: 1000 }));
    const fast = await receiver(SECRET);
    await useWebhooks([
      { id: 'slow', url: slow.url, secret: SECRET, events: ['alert'], allow_private_network: true },
      { id: 'fast', url: fast.url, secret: SECRET, events: ['balance_changed'], allow_private_network: true },
    ]);
    // The slow endpoint's backlog is enqueued first: without per-endpoint slots it would take every worker slot.
    await enqueueDeliveries(tally.started.ctx, Array.from({ length: 12 }, () => event('alert')));
    await waitFor('slow endpoint busy', async () => slow.received.length >= 1);
    await enqueueDeliveries(tally.started.ctx, Array.from({ length: 5 }, () => event('balance_changed', { asset: 'credits', balance: 1, transaction_id: 't' })));
    await waitFor('fast deliveries', async () => fast.received.length === 5, 20_000);
    // At 1 s per answer and 2 slots, the slow endpoint has answered few of its 12 by the time all 5 fast ones
    // arrived; with one shared pool the fast ones would queue behind the slow backlog (8 slots × 1 s rounds).
    const slowAnswered = slow.received.filter((r) => r.answeredAt !== undefined && r.answeredAt <= fast.received[4]!.at).length;
    expect(slowAnswered).toBeLessThanOrEqual(6);
    expect(Math.max(...slow.received.map((r) => r.n))).toBeLessThan(12);
    await waitFor('slow backlog drained', async () => slow.received.length === 12, 30_000);
  });
});

describe('webhooks: SSRF', () => {
  it.each([
    ['a loopback IP', (port: number) => `http://127.0.0.1:${port}/hook`],
    ['a DNS name resolving to loopback', (port: number) => `http://localhost:${port}/hook`],
    ['IPv4-mapped IPv6 loopback', (port: number) => `http://[::ffff:127.0.0.1]:${port}/hook`],
    ['IPv6 loopback', (port: number) => `http://[::1]:${port}/hook`],
    ['decimal IPv4', (port: number) => `http://2130706433:${port}/hook`],
    ['octal IPv4', (port: number) => `http://0177.0.0.1:${port}/hook`],
    ['hex IPv4', (port: number) => `http://0x7f.0.0.1:${port}/hook`],
    ['short IPv4', (port: number) => `http://127.1:${port}/hook`],
  ])('refuses %s unless allow_private_network is set (nothing is sent)', async (_what, urlOf) => {
    const rx = await receiver(SECRET);
    const hookId = `ssrf-${++seq}`;
    await useWebhooks([{ id: hookId, url: urlOf(rx.port), secret: SECRET, events: ['alert'] }]);
    const e = event();
    const id = deliveryId(hookId, e.id);
    await enqueueDeliveries(tally.started.ctx, [e]);
    await waitFor('two refused attempts', async () => ((await jobState(id)).job?.attemptsMade ?? 0) >= 2);
    const { job } = await jobState(id);
    expect((job!.stacktrace ?? []).join('\n') + (job!.failedReason ?? '')).toMatch(/refused: .*(loopback|IPv4-mapped).*allow_private_network/);
    expect(rx.received).toHaveLength(0);
    await useWebhooks([]); // stop retrying
  });

  it('counts attempts by result and latency in the deployment-wide stats', async () => {
    await flushJobStats();
    const stats = await readJobStats(tally.started.ctx.redis, world.env.TALLY_PREFIX);
    const by = (webhook: string, result: string) => stats.webhookAttempts.find((a) => a.webhook === webhook && a.result === result)?.count ?? 0;
    expect(by('flaky', 'http_status')).toBe(2);
    expect(by('flaky', 'delivered')).toBe(1);
    expect(by('redirects', 'redirect')).toBeGreaterThanOrEqual(2);
    expect(stats.webhookDead.find((d) => d.webhook === 'down')?.count).toBe(1);
    expect(stats.webhookLatency.find((l) => l.webhook === 'billing')?.count).toBe(1);
  });
});
