import '../src/modules.ts';
import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { spawnTally, startTally, waitFor, type InProcessTally } from './helpers/tally.ts';
import { startReceiver, type Received, type Receiver } from './helpers/webhook-receiver.ts';
import { connectClient, type PushClient } from './helpers/ws-client.ts';

/**
 * Alerts and webhooks end to end (issue 12): real queues, workers, relay, fan-out, webhook worker, gateway. A local
 * receiver verifies every signature the way Stripe's libraries do.
 */
const SECRET = 'whsec-e2e-0123456789abcdef';
const FAST_RETRIES = { TALLY_WEBHOOK_BACKOFF_MS: '50', TALLY_WEBHOOK_BACKOFF_MAX_MS: '200', TALLY_WEBHOOK_RETRY_SECONDS: '120' };
const worlds: TestWorld[] = [];
const children: ChildProcess[] = [];
const receivers: Receiver[] = [];
const clients: PushClient[] = [];
let tally: InProcessTally | undefined;

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  const running = children.splice(0).filter((c) => c.exitCode === null && c.signalCode === null);
  await Promise.all(running.map((c) => new Promise((r) => (c.once('exit', r), c.kill('SIGTERM')))));
  await tally?.stop();
  tally = undefined;
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});
afterAll(async () => {
  for (const w of worlds) await w.drop();
});

async function world(doc: object): Promise<TestWorld> {
  const w = await createWorld(FAST_RETRIES);
  worlds.push(w);
  await w.applyConfig(doc);
  return w;
}

interface Posted {
  id: string;
  type: string;
  ts: string;
  user_id: string;
  data: Record<string, any>;
}
const bodies = (rx: Receiver): Posted[] => rx.received.map((r) => JSON.parse(r.body) as Posted);
/** What the receiver got, each event once (deliveries are at-least-once; a receiver dedupes on the event id). */
const distinct = (rx: Receiver) => [...new Map(bodies(rx).map((b) => [b.id, b])).values()];

async function outboxOf(w: TestWorld, users: string[], types: string[]) {
  return w.sql<{ id: string; type: string; user_id: string; data: Record<string, unknown> }[]>`
    SELECT 'ob-' || seq AS id, type, user_id, data FROM outbox WHERE user_id = ANY(${users}) AND type = ANY(${types}) AND seq IS NOT NULL ORDER BY seq`;
}

describe('alerts and webhooks, end to end', () => {
  it('a receiver gets every alert, level_up and balance_changed it subscribed to, signed, retried after a 500', async () => {
    const rx = await startReceiver(SECRET, failFirstAttempt());
    receivers.push(rx);
    const w = await world({
      assets: { points: { default_expiry_days: null }, credits: { default_expiry_days: null } },
      pricing: { credits: { llm: { mode: 'fixed', points: 40 } } },
      affinity: { settings: { max_affinity: 1000, timezone: 'UTC', global_daily_cap: 1000 }, rules: {}, levels: [{ level: 1, threshold: 0 }, { level: 2, threshold: 100, rewards: [{ asset: 'points', amount: 7 }] }] },
      alerts: { low_balance: [{ asset: 'credits', below: 100 }], overdrawn: [{ asset: 'credits' }] },
      webhooks: [{ id: 'billing', url: rx.url, secret: SECRET, events: ['alert', 'level_up', 'balance_changed'], allow_private_network: true }],
    });
    tally = await startTally(w);
    const ws = await connectClient(tally.base, 'ann');
    clients.push(ws);
    const p = tally.producer;
    await p.grant({ event_id: 'e2e-g', user_id: 'ann', asset: 'credits', amount: 150, source: 'purchase' }, { wait: true });
    for (const i of [1, 2, 3, 4]) await p.charge({ event_id: `e2e-c${i}`, user_id: 'ann', asset: 'credits', source_type: 'llm', source_id: 's', policy: 'postpaid' }, { wait: true }); // 110, 70 (low), 30, −10 (overdrawn)
    await p.affinityAdjust({ event_id: 'e2e-a', user_id: 'ann', device_id: 'd1', delta: 120, operator_id: 'op', reason: 'test' }, { wait: true }); // level 2, reward 7 points

    const expected = await waitFor('the outbox sequenced', async () => {
      const rows = await outboxOf(w, ['ann'], ['alert', 'level_up', 'balance_changed']);
      return rows.length === 9 ? rows : undefined; // 5 + 1 balance_changed (the reward), 2 alerts, 1 level_up
    });
    await waitFor('every event delivered', async () => distinct(rx).length === expected.length && everyDeliveryAnswered(rx), 60_000);
    expect(distinct(rx).map((b) => ({ id: b.id, type: b.type, user_id: b.user_id, data: b.data })).sort(byId)).toEqual(expected.map((e) => ({ ...e })).sort(byId));
    expect(rx.received.every((r) => r.verified === 'ok')).toBe(true);
    expect(expected.filter((e) => e.type === 'alert').map((e) => e.data)).toMatchObject([
      { kind: 'low_balance', asset: 'credits', balance: 70, threshold: 100 },
      { kind: 'overdrawn', asset: 'credits', balance: -10, debt: 10 },
    ]);
    // Each delivery's first attempt got a 500, and the retry (attempt 2) delivered it.
    const attempts = new Map<string, string[]>();
    for (const r of rx.received) attempts.set(r.headers['x-tally-delivery-id'] as string, [...(attempts.get(r.headers['x-tally-delivery-id'] as string) ?? []), r.headers['x-tally-attempt'] as string]);
    for (const seen of attempts.values()) expect(seen.slice(0, 2)).toEqual(['1', '2']);
    // The alerts went to the user's socket too, under the same ids.
    const pushed = await ws.waitFor(2, (m) => m.type === 'alert');
    expect(pushed.map((m) => m.id)).toEqual(expected.filter((e) => e.type === 'alert').map((e) => e.id));
  }, 120_000);

  it('two worker processes charging one account at once: exactly one low_balance alert per crossing, re-armed by a top-up', async () => {
    const rx = await startReceiver(SECRET);
    receivers.push(rx);
    const w = await world({
      assets: { credits: { default_expiry_days: null } },
      alerts: { low_balance: [{ asset: 'credits', below: 100 }] },
      webhooks: [{ id: 'ops', url: rx.url, secret: SECRET, events: ['alert'], allow_private_network: true }],
    });
    tally = await startTally(w, ['api', 'scheduler']); // the api (WebSocket) here; every worker in another process
    // Small batches, few jobs in flight per process: both processes keep taking charges of the one account.
    const applied = [0, 0];
    for (const i of [0, 1]) {
      const child = spawnTally(w, ['start', '--role', 'worker'], { TALLY_WORKER_CONCURRENCY: '5', TALLY_BATCH_MAX: '5', LOG_LEVEL: 'debug' });
      child.stdout!.on('data', () => {});
      let partial = '';
      child.stderr!.on('data', (d: Buffer) => {
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop()!;
        applied[i] = applied[i]! + lines.filter((l) => l.includes('"queue":"charges"') && l.includes('"msg":"job applied"')).length;
      });
      children.push(child);
    }
    const chargesQueue = tally.producer.queue('charges');
    await waitFor('both worker processes up', async () => (await chargesQueue.getWorkers()).length >= 2, 60_000);
    const ws = await connectClient(tally.base, 'bo');
    clients.push(ws);
    const p = tally.producer;
    await p.grant({ event_id: 'mp-g1', user_id: 'bo', asset: 'credits', amount: 1000, source: 'purchase' }, { wait: true, timeoutMs: 60_000 });
    const charges = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({ event_id: `mp-c${from + i}`, user_id: 'bo', asset: 'credits', source_type: 'llm', source_id: 's', amount: 10, policy: 'postpaid' as const }));
    await p.chargeBulk(charges(0, 95), { batch: false }); // 1000 → 50: crosses 100 once
    await waitForBalance(w, 'bo', 50n);
    await p.grant({ event_id: 'mp-g2', user_id: 'bo', asset: 'credits', amount: 500, source: 'purchase' }, { wait: true }); // 550: re-armed
    await p.chargeBulk(charges(95, 50), { batch: false }); // → 50: crosses again
    await waitForBalance(w, 'bo', 50n);

    // Both processes applied charges of the account (the race was real), and the alerts are exactly two, at 90.
    await waitFor('the logs of 145 charges', async () => applied[0]! + applied[1]! >= 145, 10_000);
    expect(applied[0]).toBeGreaterThan(0);
    expect(applied[1]).toBeGreaterThan(0);
    // Every charge has committed: the alerts written are final (sequenced by the relay or not yet).
    const written = await w.sql<{ data: Record<string, unknown> }[]>`SELECT data FROM outbox WHERE type = 'alert' AND user_id = 'bo' ORDER BY outbox_id`;
    expect(written.map((a) => a.data)).toMatchObject([
      { kind: 'low_balance', balance: 90 },
      { kind: 'low_balance', balance: 90 },
    ]);
    const alerts = await waitFor('both alerts in the feed', async () => {
      const rows = await outboxOf(w, ['bo'], ['alert']);
      return rows.length === 2 ? rows : undefined;
    });
    expect(alerts.map((a) => a.data)).toMatchObject([
      { kind: 'low_balance', balance: 90 },
      { kind: 'low_balance', balance: 90 },
    ]);
    await waitFor('both alerts posted', async () => distinct(rx).length === 2, 60_000);
    expect(distinct(rx).map((b) => b.id).sort()).toEqual(alerts.map((a) => a.id).sort());
    expect(rx.received.every((r) => r.verified === 'ok')).toBe(true);
    const pushed = await ws.waitFor(2, (m) => m.type === 'alert', 30_000);
    expect(pushed.map((m) => m.id)).toEqual(alerts.map((a) => a.id));
  }, 180_000);
});

const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);

/** 500 to the first attempt of every delivery, 200 after. */
function failFirstAttempt() {
  const seen = new Set<string>();
  return (r: Received) => {
    const id = r.headers['x-tally-delivery-id'] as string;
    if (seen.has(id)) return { status: 200 };
    seen.add(id);
    return { status: 500 };
  };
}

/** Every delivery id the receiver saw has been answered 2xx at least once (no retry still to come). */
function everyDeliveryAnswered(rx: Receiver): boolean {
  const ids = new Set(rx.received.map((r) => r.headers['x-tally-delivery-id'] as string));
  return [...ids].every((id) => rx.received.filter((r) => r.headers['x-tally-delivery-id'] === id).length >= 2);
}

async function waitForBalance(w: TestWorld, user: string, balance: bigint): Promise<void> {
  await waitFor(`${user}'s balance ${balance}`, async () => {
    const [row] = await w.sql<{ balance: bigint }[]>`SELECT balance FROM accounts WHERE user_id = ${user}`;
    return row?.balance === balance;
  }, 90_000);
}
