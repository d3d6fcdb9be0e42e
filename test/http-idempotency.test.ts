import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/modules.ts';
import { QUEUE } from '../src/queues/common.ts';
import { ADMIN_TOKEN, API_TOKEN, createWorld, type TestWorld } from './helpers/env.ts';
import { spawnTally, startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;
const children: ChildProcess[] = [];

/** `tally start --role api` as its own process (so it can be killed); its port is read from its start log. */
async function apiProcess(): Promise<{ base: string; child: ChildProcess }> {
  const child = spawnTally(world, ['start', '--role', 'api'], { LOG_LEVEL: 'info' });
  children.push(child);
  let log = '';
  child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const port = await waitFor('an api process', async () => {
    for (const line of log.split('\n')) if (line.includes('"tally started"')) return (JSON.parse(line) as { port?: number }).port;
    if (child.exitCode !== null) throw new Error(`api process exited: ${log}`);
    return undefined;
  }, 60_000, 100);
  return { base: `http://127.0.0.1:${port}`, child };
}

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world, ['api']); // no worker: the affinity tests decide when jobs run
});
afterAll(async () => {
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? (c.kill('SIGKILL'), new Promise((r) => c.once('exit', r))) : undefined)));
  await tally?.stop();
  await world?.drop();
});

interface Raw {
  status: number;
  text: string;
  headers: Headers;
  json: any;
}

async function post(path: string, body: unknown, key?: string, opts: { base?: string; token?: string } = {}): Promise<Raw> {
  const headers: Record<string, string> = { authorization: `Bearer ${opts.token ?? API_TOKEN}`, 'content-type': 'application/json' };
  if (key !== undefined) headers['idempotency-key'] = key;
  const res = await fetch(`${opts.base ?? tally.base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers, json: JSON.parse(text) };
}

const ordersOf = async (user: string) => (await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders WHERE user_id = ${user}`)[0]!.n;

describe('Idempotency-Key', () => {
  it('orders: the same key and body answer the first response again, byte for byte; another body is 409 idempotency_conflict', async () => {
    const first = await post('/v1/orders', { user_id: 'ik-1', sku: 'credits-1000' }, 'key-1');
    expect(first.status).toBe(201);
    const again = await post('/v1/orders', { user_id: 'ik-1', sku: 'credits-1000' }, 'key-1');
    expect(again.status).toBe(201);
    expect(again.text).toBe(first.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    // Key order and spacing do not make another request: the body is compared as JSON.
    const reordered = await fetch(`${tally.base}/v1/orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json', 'idempotency-key': 'key-1' },
      body: '{ "sku": "credits-1000",  "user_id": "ik-1" }',
    });
    expect(await reordered.text()).toBe(first.text);
    const other = await post('/v1/orders', { user_id: 'ik-2', sku: 'credits-1000' }, 'key-1');
    expect(other.status).toBe(409);
    expect(other.json.error.code).toBe('idempotency_conflict');
    expect(await ordersOf('ik-1')).toBe(1);
    expect(await ordersOf('ik-2')).toBe(0);
    // Without a key, or with another: a new order each time (orders are not idempotent by themselves).
    await post('/v1/orders', { user_id: 'ik-1', sku: 'credits-1000' });
    await post('/v1/orders', { user_id: 'ik-1', sku: 'credits-1000' }, 'key-2');
    expect(await ordersOf('ik-1')).toBe(3);
  });

  it('keys are scoped per credential and route: the admin token, or another route, with the same key is another request', async () => {
    const a = await post('/v1/orders', { user_id: 'ik-s', sku: 'credits-1000' }, 'shared-key');
    const b = await post('/v1/orders', { user_id: 'ik-s', sku: 'credits-1000' }, 'shared-key', { token: ADMIN_TOKEN });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.json.order_id).not.toBe(a.json.order_id);
    const hold = await post('/v1/holds', { event_id: 'h-s', user_id: 'ik-s', asset: 'credits', source_type: 'llm', amount: 1, ttl_seconds: 60 }, 'shared-key');
    expect(hold.status).toBe(402); // nothing to hold against, but not a conflict with the order's key
  });

  it('refusals are answers too: a 402 is replayed as it was, even once the balance would cover it', async () => {
    const body = { event_id: 'h-402', user_id: 'ik-h', asset: 'credits', source_type: 'llm', amount: 5, ttl_seconds: 60 };
    const first = await post('/v1/holds', body, 'hold-key');
    expect(first.status).toBe(402);
    await post('/v1/admin/ledger/adjust', { event_id: 'adj-h', user_id: 'ik-h', asset: 'credits', amount: 10, reason: 'top up', operator_id: 'op' }, undefined, { token: ADMIN_TOKEN });
    const again = await post('/v1/holds', body, 'hold-key');
    expect(again.status).toBe(402);
    expect(again.text).toBe(first.text);
    const fresh = await post('/v1/holds', body, 'hold-key-2');
    expect(fresh.status).toBe(201);
  });

  it('the admin ledger adjust: replayed under its key; a key is 1–255 printable ASCII characters', async () => {
    const body = { event_id: 'adj-k', user_id: 'ik-a', asset: 'points', amount: 25, reason: 'goodwill', operator_id: 'op-1' };
    const first = await post('/v1/admin/ledger/adjust', body, 'adj-key', { token: ADMIN_TOKEN });
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ outcome: 'applied', amount: 25, balance_before: 0, balance_after: 25 });
    const again = await post('/v1/admin/ledger/adjust', body, 'adj-key', { token: ADMIN_TOKEN });
    expect(again.text).toBe(first.text); // not noop_duplicate: the first answer itself
    for (const bad of ['x'.repeat(256), 'é-not-ascii']) {
      const res = await fetch(`${tally.base}/v1/admin/ledger/adjust`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'idempotency-key': encodeURI(bad) === bad ? bad : bad },
        body: JSON.stringify(body),
      }).catch(() => null);
      if (res) {
        expect(res.status).toBe(400);
        expect((await res.json()).error.code).toBe('invalid_idempotency_key');
      }
    }
    expect(await post('/v1/admin/ledger/adjust', body, 'k'.repeat(255), { token: ADMIN_TOKEN }).then((r) => r.status)).toBe(200);
  });

  it('concurrent twins in one process: one executes, the others get the first answer or 409 idempotency_in_progress', async () => {
    const body = { user_id: 'ik-c', sku: 'credits-1000' };
    const all = await Promise.all(Array.from({ length: 30 }, () => post('/v1/orders', body, 'race-key')));
    const ok = all.filter((r) => r.status === 201);
    const busy = all.filter((r) => r.status === 409);
    expect(ok.length + busy.length).toBe(30);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const r of busy) {
      expect(r.json.error.code).toBe('idempotency_in_progress');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    expect(new Set(ok.map((r) => r.text)).size).toBe(1);
    expect(await ordersOf('ik-c')).toBe(1);
  });

  it('two API processes racing on one key: one order', async () => {
    const [a, b] = await Promise.all([apiProcess(), apiProcess()]);
    const body = { user_id: 'ik-2p', sku: 'credits-1000' };
    for (let round = 0; round < 3; round++) {
      const all = await Promise.all(Array.from({ length: 20 }, (_, i) => post('/v1/orders', body, `two-proc-${round}`, { base: i % 2 ? a.base : b.base })));
      const odd = all.filter((r) => !(r.status === 201 || (r.status === 409 && r.json.error.code === 'idempotency_in_progress'))).map((r) => `${r.status} ${r.text.slice(0, 200)}`);
      expect(odd).toEqual([]);
      expect(new Set(all.filter((r) => r.status === 201).map((r) => r.text)).size).toBe(1);
    }
    expect(await ordersOf('ik-2p')).toBe(3);
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
  });

  const waitingOn = (text: string) =>
    waitFor(`a statement waiting on a lock: ${text}`, async () => {
      const rows = await world.sql`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE ${`%${text}%`}`;
      return rows.length > 0;
    });

  it('an api process killed between claim and answer, before its effect: the key waits out its lease, then a retry runs it — one order', async () => {
    const victim = await apiProcess();
    const body = { user_id: 'ik-kill', sku: 'credits-1000' };
    // Hold the orders table so the victim's insert waits, then kill the victim mid-request.
    const lock = await world.sql.reserve();
    await lock`BEGIN`;
    await lock`LOCK TABLE orders IN EXCLUSIVE MODE`;
    let pending: Promise<Raw | null>;
    try {
      pending = post('/v1/orders', body, 'kill-key', { base: victim.base }).catch(() => null);
      await waitingOn('INSERT INTO orders');
      victim.child.kill('SIGKILL');
      await new Promise((r) => victim.child.once('exit', r));
    } finally {
      await lock`COMMIT`;
      lock.release();
    }
    expect(await pending).toBeNull(); // the client never got an answer
    // The claim outlives its owner until the lease passes: a retry is told to come back.
    const early = await post('/v1/orders', body, 'kill-key');
    expect(early.status).toBe(409);
    expect(early.json.error.code).toBe('idempotency_in_progress');
    await world.clock.advance(61_000); // past TALLY_IDEMPOTENCY_LEASE_SECONDS (60)
    const retry = await post('/v1/orders', body, 'kill-key');
    expect(retry.status).toBe(201);
    expect(await ordersOf('ik-kill')).toBe(1);
    expect((await post('/v1/orders', body, 'kill-key')).text).toBe(retry.text);
  });

  it('an api process killed after its effect committed, before its answer was stored: the retry answers that effect — one order, never two', async () => {
    const victim = await apiProcess();
    const body = { user_id: 'ik-kill2', sku: 'credits-1000' };
    const orders = await world.sql.reserve();
    const keys = await world.sql.reserve();
    let pending: Promise<Raw | null>;
    try {
      await orders`BEGIN`;
      await orders`LOCK TABLE orders IN EXCLUSIVE MODE`;
      pending = post('/v1/orders', body, 'kill-key-2', { base: victim.base }).catch(() => null);
      await waitingOn('INSERT INTO orders'); // claimed already; the order waits
      await keys`BEGIN`;
      await keys`LOCK TABLE idempotency_keys IN SHARE MODE`; // the answer's update will wait
      await orders`COMMIT`; // the order commits
      await waitingOn('UPDATE idempotency_keys');
      victim.child.kill('SIGKILL');
      await new Promise((r) => victim.child.once('exit', r));
    } finally {
      await orders`ROLLBACK`.catch(() => {});
      await keys`COMMIT`.catch(() => {});
      orders.release();
      keys.release();
    }
    expect(await pending).toBeNull();
    expect(await ordersOf('ik-kill2')).toBe(1); // the effect happened; its answer was lost with the process
    await world.clock.advance(61_000);
    const retry = await post('/v1/orders', body, 'kill-key-2');
    expect(retry.status).toBe(201);
    // Run again, the request finds the order it made (its id derives from the key): still one.
    expect(await ordersOf('ik-kill2')).toBe(1);
    const [order] = await world.sql<{ order_id: string }[]>`SELECT order_id FROM orders WHERE user_id = 'ik-kill2'`;
    expect(retry.json.order_id).toBe(order!.order_id);
  });

  it('affinity adjust killed while waiting for its job: the retry waits for the same job; applied once', async () => {
    const victim = await apiProcess();
    const body = { user_id: 'ik-aff', device_id: 'd1', delta: 5, operator_id: 'op', reason: 'sorry' }; // no event_id
    const pending = post('/v1/admin/affinity/adjust', body, 'aff-key', { base: victim.base, token: ADMIN_TOKEN }).catch(() => null);
    const queue = tally.producer.queue(QUEUE.affinityEvents);
    await waitFor('the adjust job', async () => ((await queue.getJobCounts('waiting')).waiting ?? 0) > 0);
    victim.child.kill('SIGKILL');
    await new Promise((r) => victim.child.once('exit', r));
    expect(await pending).toBeNull();
    await world.clock.advance(61_000);
    const worker = await startTally(world, ['worker']);
    try {
      const retry = await post('/v1/admin/affinity/adjust', body, 'aff-key', { token: ADMIN_TOKEN });
      expect(retry.status).toBe(200);
      expect(retry.json).toMatchObject({ outcome: 'applied', after: 5 });
      expect(retry.json.event_id).toMatch(/^adjust-[0-9a-f]{32}$/);
      const again = await post('/v1/admin/affinity/adjust', body, 'aff-key', { token: ADMIN_TOKEN });
      expect(again.text).toBe(retry.text);
      const { data } = await tally.admin.GET('/v1/admin/users/{user_id}/devices/{device_id}', { params: { path: { user_id: 'ik-aff', device_id: 'd1' } } });
      expect(data!.value).toBe(5);
    } finally {
      await worker.stop();
    }
  });

  it('keys are kept 24 h, then pruned by the idempotency-keys maintenance task (scheduled hourly)', async () => {
    const body = { user_id: 'ik-p', sku: 'credits-1000' };
    const first = await post('/v1/orders', body, 'prune-key');
    await world.clock.advance(23 * 3600_000);
    let run = await tally.admin.POST('/v1/admin/maintenance/{task}', { params: { path: { task: 'idempotency-keys' } } });
    expect((await post('/v1/orders', body, 'prune-key')).text).toBe(first.text);
    await world.clock.advance(2 * 3600_000);
    run = await tally.admin.POST('/v1/admin/maintenance/{task}', { params: { path: { task: 'idempotency-keys' } } });
    expect(run.data).toMatchObject({ task: 'idempotency-keys', retention_hours: 24 });
    expect((run.data as unknown as { pruned: number }).pruned).toBeGreaterThanOrEqual(1);
    const [left] = await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM idempotency_keys WHERE idem_key = 'prune-key'`;
    expect(left!.n).toBe(0);
  });
});
