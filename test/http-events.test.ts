import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/modules.ts';
import { QUEUE } from '../src/queues/common.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world, ['api', 'worker']);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

const grant = (id: string, user = 'ing', amount = 100) => ({ type: 'grant', event_id: id, user_id: user, asset: 'credits', amount, source: 'gift' });
const charge = (id: string, user = 'ing', amount = 7) => ({ type: 'charge', event_id: id, user_id: user, asset: 'credits', source_type: 'llm', source_id: id, amount, policy: 'postpaid' });

async function balance(user: string) {
  const { data } = await tally.client.GET('/v1/users/{user_id}/balances/{asset}', { params: { path: { user_id: user, asset: 'credits' } } });
  return (data as { balance: number }).balance;
}

describe('POST /v1/events: HTTP ingest', () => {
  it('enqueues each valid payload on its queue with jobId = event_id and name = type; answers each invalid one and enqueues none of them', async () => {
    const events: unknown[] = [
      grant('ev-g1'),
      charge('ev-c1'),
      { type: 'affinity.event', event_id: 'ev-a1', user_id: 'ing', device_id: 'd1', rule_key: 'chat', source: 'test' },
      { type: 'grant', event_id: 'ev-bad1', user_id: 'ing', asset: 'credits', amount: 1.5, source: 'gift' }, // not an integer
      { type: 'teleport', event_id: 'ev-bad2' },
      null,
      'a string',
      [],
      { type: 'affinity.adjust', event_id: 'ev-adm', user_id: 'ing', device_id: 'd1', delta: 5, operator_id: 'op', reason: 'x' }, // API token
      grant('ev-g1'), // the same again in the call
      { ...grant('ev-g1'), amount: 5 }, // same id, other payload
      { ...charge('ev-g1') }, // same id on another queue: its own event
      { type: 'grant', event_id: '123', user_id: 'ing', asset: 'credits', amount: 1, source: 'gift' }, // all digits
    ];
    const { data, response } = await tally.client.POST('/v1/events', { body: { events: events as never } });
    expect(response.status).toBe(202);
    const body = data as { accepted: string[]; rejected: { index: number; code: string; event_id?: string }[] };
    expect(body.accepted).toEqual(['ev-g1', 'ev-c1', 'ev-a1', 'ev-g1']);
    expect(body.rejected.map((r) => [r.index, r.code])).toEqual([
      [3, 'invalid_payload'],
      [4, 'invalid_payload'],
      [5, 'invalid_payload'],
      [6, 'invalid_payload'],
      [7, 'invalid_payload'],
      [8, 'forbidden'],
      [9, 'duplicate_event_id'],
      [10, 'idempotency_conflict'],
      [12, 'invalid_payload'],
    ]);
    expect(body.rejected[0]!.event_id).toBe('ev-bad1');
    const grants = tally.producer.queue(QUEUE.grants);
    const job = await grants.getJob('ev-g1');
    expect(job?.name).toBe('grant');
    expect(job?.data).toEqual(grant('ev-g1'));
    expect((await tally.producer.queue(QUEUE.charges).getJob('ev-c1'))?.name).toBe('charge');
    expect((await tally.producer.queue(QUEUE.charges).getJob('ev-g1'))?.name).toBe('charge');
    expect(await tally.producer.queue(QUEUE.affinityEvents).getJob('ev-a1')).toBeDefined();
    for (const id of ['ev-bad1', 'ev-bad2', '123']) expect(await grants.getJob(id)).toBeUndefined();
    expect(await tally.producer.queue(QUEUE.affinityEvents).getJob('ev-adm')).toBeUndefined();
  });

  it('?wait=true answers every event\'s result in the events\' order once applied, rejections in place', async () => {
    const { data, response } = await tally.client.POST('/v1/events', {
      params: { query: { wait: 'true' } },
      body: { events: [grant('w-g', 'waiter', 50), { type: 'nope' }, charge('w-c', 'waiter', 20), { ...grant('w-x', 'waiter'), asset: 'gold' }] as never },
    });
    expect(response.status).toBe(200);
    const results = (data as { results: Record<string, unknown>[] }).results;
    expect(results).toHaveLength(4);
    expect(results[0]).toMatchObject({ outcome: 'applied', amount: 50, balance_after: 50 });
    expect(results[1]).toMatchObject({ failed: 'invalid_payload' });
    // Rejected by the route or by the worker, a reason starts with its code.
    expect(String(results[1]!.reason)).toMatch(/^invalid_payload: type must be one of/);
    expect(String(results[3]!.reason)).toMatch(/^invalid_payload: /);
    expect(results[2]).toMatchObject({ outcome: 'applied', amount: 20, balance_before: 50, balance_after: 30 });
    // Valid against the schema, refused by the worker against the config: the worker's verdict.
    expect(results[3]).toMatchObject({ failed: 'invalid_payload' });
    expect(String(results[3]!.reason)).toMatch(/unknown asset "gold"/);
    expect(await balance('waiter')).toBe(30);
  });

  it('?wait=true applies a user\'s events in the order sent also across queues: guarded charges funded by the grant just before them', async () => {
    // Each guarded charge only succeeds if the grant sent just before it (on the other queue) was applied first; a
    // second user interleaved on the same queues must not hold up or reorder the first.
    const guarded = (id: string, user: string, amount: number) => ({ ...charge(id, user, amount), policy: 'guarded' });
    const events: unknown[] = [];
    for (let i = 0; i < 6; i++) {
      events.push(grant(`ord-g${i}`, 'ord-a', 10), guarded(`ord-c${i}`, 'ord-a', 10));
      events.push(grant(`ord-h${i}`, 'ord-b', 5), guarded(`ord-d${i}`, 'ord-b', 5));
    }
    for (const mode of ['jobs', 'batch'] as const) {
      const body = { events: events.map((e) => ({ ...(e as object), event_id: `${mode}-${(e as { event_id: string }).event_id}` })) };
      const { data, response } = await tally.client.POST('/v1/events', { params: { query: { wait: 'true', mode } }, body: body as never });
      expect(response.status).toBe(200);
      const results = (data as { results: { outcome: string; balance_before: number; balance_after: number }[] }).results;
      // Every grant lands on an empty account and every charge spends exactly what the grant before it brought.
      results.forEach((r, i) => {
        const amount = i % 4 === 0 || i % 4 === 1 ? 10 : 5;
        expect(r, `${mode} #${i}`).toMatchObject(i % 2 === 0 ? { outcome: 'applied', balance_after: amount } : { outcome: 'applied', balance_before: amount, balance_after: 0 });
      });
    }
  });

  it('?wait=true applies a user\'s events on one queue in the order sent too: a chain of postpaid charges, each from the balance the one before left', async () => {
    const events = Array.from({ length: 12 }, (_, i) => charge(`chain-${i}`, i % 2 === 0 ? 'chain-a' : 'chain-b', i + 1));
    for (const mode of ['jobs', 'batch'] as const) {
      const body = { events: events.map((e) => ({ ...e, event_id: `${mode}-${e.event_id}`, user_id: `${mode}-${e.user_id}` })) };
      const { data } = await tally.client.POST('/v1/events', { params: { query: { wait: 'true', mode } }, body: body as never });
      const results = (data as unknown as { results: { balance_before: number; balance_after: number }[] }).results;
      const left = { a: 0, b: 0 };
      results.forEach((r, i) => {
        const who = i % 2 === 0 ? 'a' : 'b';
        expect(r, `${mode} #${i}`).toMatchObject({ balance_before: left[who], balance_after: left[who] - (i + 1) });
        left[who] -= i + 1;
      });
    }
  });

  it('?wait=true with a charge and its refund behind a grant: all applied at once (the refund never waits on a charge held back behind it)', async () => {
    const guarded = (id: string, user: string, amount: number) => ({ ...charge(id, user, amount), policy: 'guarded' });
    const refund = (id: string, chargeId: string) => ({ type: 'refund', event_id: id, charge_event_id: chargeId });
    for (const mode of ['jobs', 'batch'] as const) {
      const u = `rf-${mode}`;
      const events = [grant(`${u}-g`, u, 10), guarded(`${u}-c`, u, 10), refund(`${u}-r`, `${u}-c`), refund(`${u}-r0`, `${u}-c0`), guarded(`${u}-c0`, u, 0 + 4)];
      const t0 = Date.now();
      const { data, response } = await tally.client.POST('/v1/events', { params: { query: { wait: 'true', mode } }, body: { events: events as never } });
      expect(response.status).toBe(200);
      const results = (data as { results: { outcome?: string; failed?: string; amount?: number }[] }).results;
      expect(results.map((r) => r.outcome ?? r.failed), `${mode}, after ${Date.now() - t0} ms`).toEqual(['applied', 'applied', 'applied', 'applied', 'applied']);
      expect(results[2]!.amount).toBe(10);
      expect(await balance(u)).toBe(10 - 4 + 4);
    }
  });

  it('?wait=true with hostile names: users and event ids `__proto__` / `constructor`, a refund of charge `__proto__` — all in order, once', async () => {
    const refund = (id: string, chargeId: string) => ({ type: 'refund', event_id: id, charge_event_id: chargeId, amount: 2 });
    const events = [
      grant('constructor', '__proto__', 10),
      { ...charge('__proto__', '__proto__', 6), policy: 'guarded' },
      refund('toString', '__proto__'),
      grant('hasOwnProperty', 'constructor', 1),
      { ...charge('valueOf', 'constructor', 1), policy: 'guarded' },
    ];
    const { data, response } = await tally.client.POST('/v1/events', { params: { query: { wait: 'true' } }, body: { events: events as never } });
    expect(response.status).toBe(200);
    const results = (data as unknown as { results: { outcome?: string; balance_after?: number }[] }).results;
    expect(results.map((r) => [r.outcome, r.balance_after])).toEqual([['applied', 10], ['applied', 4], ['applied', 6], ['applied', 1], ['applied', 0]]);
    expect(await balance('__proto__')).toBe(6);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('the same events again, in another call: applied once (same exactly-once rules as the queues)', async () => {
    const events = [grant('again-g', 'again', 40), charge('again-c', 'again', 15)];
    for (let i = 0; i < 3; i++) {
      const { response } = await tally.client.POST('/v1/events', { params: { query: { wait: 'true' } }, body: { events: events as never } });
      expect(response.status).toBe(200);
    }
    // Jobs removed from Redis (retention) do not bring the events back either: PostgreSQL decides.
    await tally.producer.queue(QUEUE.grants).remove('again-g');
    await tally.producer.queue(QUEUE.charges).remove('again-c');
    const { data } = await tally.client.POST('/v1/events', { params: { query: { wait: 'true' } }, body: { events: events as never } });
    const results = (data as { results: { outcome: string }[] }).results;
    expect(results.map((r) => r.outcome)).toEqual(['noop_duplicate', 'noop_duplicate']);
    expect(await balance('again')).toBe(25);
  });

  it('a known event_id with another payload fails idempotency_conflict in the worker, nothing applied', async () => {
    await tally.client.POST('/v1/events', { params: { query: { wait: 'true' } }, body: { events: [grant('conf-1', 'conf', 10)] as never } });
    await tally.producer.queue(QUEUE.grants).remove('conf-1');
    const { data } = await tally.client.POST('/v1/events', { params: { query: { wait: 'true' } }, body: { events: [grant('conf-1', 'conf', 99)] as never } });
    expect((data as { results: { failed?: string }[] }).results[0]!.failed).toBe('idempotency_conflict');
    expect(await balance('conf')).toBe(10);
  });

  it('the admin token may send affinity.adjust', async () => {
    const { data } = await tally.admin.POST('/v1/events', {
      params: { query: { wait: 'true' } },
      body: { events: [{ type: 'affinity.adjust', event_id: 'adm-1', user_id: 'ing2', device_id: 'd9', delta: 7, operator_id: 'op', reason: 'welcome' }] as never },
    });
    expect((data as { results: { outcome: string; after: number }[] }).results[0]).toMatchObject({ outcome: 'applied', after: 7 });
  });

  it('bounds: 0 or 1001 events, more than 100 with wait, a wait that is not true/false: 400 in the error shape', async () => {
    const many = Array.from({ length: 1001 }, (_, i) => grant(`b-${i}`));
    const cases: [unknown, Record<string, string>, string][] = [
      [{ events: [] }, {}, 'invalid_request'],
      [{ events: many }, {}, 'invalid_request'],
      [{ events: many.slice(0, 101) }, { wait: 'true' }, 'too_many_to_wait'],
      [{ events: [grant('q-1')] }, { wait: 'yes' }, 'invalid_request'],
      [{ events: [grant('q-1')], extra: 1 }, {}, 'invalid_request'],
    ];
    for (const [body, query, code] of cases) {
      const qs = new URLSearchParams(query).toString();
      const res = await tally.http('POST', `/v1/events${qs ? `?${qs}` : ''}`, body);
      expect(res.status, code).toBe(400);
      expect(res.body.error.code).toBe(code);
    }
    expect(await tally.producer.queue(QUEUE.grants).getJob('q-1')).toBeUndefined();
  });

  it('1000 events in one call: all enqueued (one addBulk per queue), each applied once', async () => {
    const events = Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? grant(`big-g${i}`, `big${Math.floor(i / 2) % 10}`, 3) : charge(`big-c${i}`, `big${Math.floor(i / 2) % 10}`, 1)));
    const { data, response } = await tally.client.POST('/v1/events', { body: { events: events as never } });
    expect(response.status).toBe(202);
    expect((data as { accepted: string[] }).accepted).toHaveLength(1000);
    const decided = await waitForDecided(1000, 'big');
    expect(decided[0]!.n).toBe(1000);
    // 50 grants of 3 and 50 charges of 1 per user.
    expect(await balance('big3')).toBe(100);
  });
});

async function waitForDecided(count: number, prefix: string) {
  for (let i = 0; i < 600; i++) {
    const rows = await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM processed_events WHERE event_id LIKE ${`${prefix}-%`}`;
    if (rows[0]!.n >= count) return rows;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('events not decided in time');
}
