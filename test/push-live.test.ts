// Every feature module, as the CLI loads them (the affinity engine writes most push events).
import '../src/modules.ts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { insertOutbox } from '../src/ledger/sql/outbox.ts';
import { outboxCommitted } from '../src/outbox/after-commit.ts';
import { pushMetrics } from '../src/push/metrics.ts';
import { pushSettings } from '../src/push/settings.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { ADMIN_TOKEN, startTally, waitFor, type InProcessTally } from './helpers/tally.ts';
import { connectClient, tokenFor, upgradeStatus, wsUrl, type PushClient } from './helpers/ws-client.ts';
import { signToken } from '../src/push/token.ts';

let world: TestWorld;
let tally: InProcessTally;
let n = 0;
const id = (p: string) => `${p}-${++n}-${Date.now().toString(36)}`;
const clients: PushClient[] = [];
const defaults = { ...pushSettings };

async function connect(user: string, opts = {}) {
  const c = await connectClient(tally.base, user, opts);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  Object.assign(pushSettings, { heartbeatMs: 300, sweepEveryMs: 400 });
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world);
});
afterEach(() => {
  for (const c of clients.splice(0)) c.ws.terminate();
  Object.assign(pushSettings, { fastPath: true, maxBufferedBytes: defaults.maxBufferedBytes, heartbeatMs: 300 });
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

const grant = (user: string, amount: number) =>
  tally.producer.grant({ event_id: id('g'), user_id: user, asset: 'points', amount, source: 'recharge' }, { wait: true }) as Promise<any>;
const charge = (user: string, amount: number) =>
  tally.producer.charge({ event_id: id('c'), user_id: user, asset: 'points', source_type: 'script', source_id: 's', amount, policy: 'postpaid' } as never, { wait: true }) as Promise<any>;

/** An affinity-style change written the way the affinity engine writes it: outbox rows in its transaction. */
async function commitOutbox(rows: Parameters<typeof insertOutbox>[1]) {
  await world.sql.begin((tx) => insertOutbox(tx, rows));
  outboxCommitted(rows.length);
}

describe('live push through the real queues', () => {
  it('a charge pushes balance_changed to every socket of its user and to no other user', async () => {
    const [a1, a2, b] = await Promise.all([connect('p-alice'), connect('p-alice'), connect('p-bob')]);
    const g = await grant('p-alice', 100);
    const c = await charge('p-alice', 7);

    for (const client of [a1, a2]) {
      const msgs = await client.waitFor(2);
      expect(msgs.map((m) => [m.type, m.data])).toEqual([
        ['balance_changed', { asset: 'points', balance: 100, transaction_id: g.transaction_id }],
        ['balance_changed', { asset: 'points', balance: 93, transaction_id: c.transaction_id }],
      ]);
      for (const m of msgs) {
        expect(m.id).toMatch(/^ob-\d+$/);
        expect(Number.isNaN(Date.parse(m.ts))).toBe(false);
      }
    }
    expect(a1.messages.map((m) => m.id)).toEqual(a2.messages.map((m) => m.id));
    expect(new Set(a1.messages.map((m) => m.id)).size).toBe(2);
    // bob's socket works (it gets his own change) and got nothing of alice's
    const gb = await grant('p-bob', 5);
    const [only] = await b.waitFor(1);
    expect(only!.data).toEqual({ asset: 'points', balance: 5, transaction_id: gb.transaction_id });
    await new Promise((r) => setTimeout(r, 300));
    expect(b.messages).toHaveLength(1);
    expect(a1.messages).toHaveLength(2);
  });

  it('affinity_update and level_up reach their user with the contract fields', async () => {
    const [carol, dave] = await Promise.all([connect('p-carol'), connect('p-dave')]);
    await commitOutbox([
      { user_id: 'p-carol', type: 'affinity_update', data: { device_id: 'd1', change: 15, before: 90, after: 105, rule_key: 'gift', source: 'app' } },
      { user_id: 'p-carol', type: 'level_up', data: { device_id: 'd1', old_level: 1, new_level: 2, rewards: [{ asset: 'points', amount: 50 }] } },
    ]);
    const msgs = await carol.waitFor(2);
    expect(msgs.map((m) => m.type)).toEqual(['affinity_update', 'level_up']);
    expect(msgs[1]!.data).toEqual({ device_id: 'd1', old_level: 1, new_level: 2, rewards: [{ asset: 'points', amount: 50 }] });
    await commitOutbox([{ user_id: 'p-dave', type: 'level_down', data: { device_id: 'd9', old_level: 2, new_level: 1 } }]);
    await dave.waitFor(1);
    expect(dave.messages.map((m) => m.type)).toEqual(['level_down']);
    expect(carol.messages).toHaveLength(2);
  });

  it('alert messages (issue 12) travel the same outbox and reach their user like the others', async () => {
    const [ivy, other] = await Promise.all([connect('p-ivy'), connect('p-jack')]);
    const data = { kind: 'low_balance', asset: 'credits', balance: 90, threshold: 100 };
    await commitOutbox([{ user_id: 'p-ivy', type: 'alert', data }]);
    const [m] = await ivy.waitFor(1);
    expect(m).toMatchObject({ type: 'alert', data });
    expect(m!.id).toMatch(/^ob-\d+$/);
    expect(other.messages).toHaveLength(0);
  });

  it('an affinity level-up through the affinity-events queue pushes affinity_update, level_up and the reward balance', async () => {
    const [gina, other] = await Promise.all([connect('p-gina'), connect('p-hank')]);
    const up = (await tally.producer.affinityAdjust(
      { event_id: id('adj'), user_id: 'p-gina', device_id: 'dev-1', delta: 120, operator_id: 'op-1', reason: 'push test' },
      { wait: true },
    )) as any;
    expect(up).toMatchObject({ outcome: 'applied', level_before: 1, level_after: 2 });
    const msgs = await gina.waitFor(3);
    const byType = Object.fromEntries(msgs.map((m) => [m.type, m.data]));
    expect(byType.affinity_update).toMatchObject({ device_id: 'dev-1', change: 120, before: 0, after: 120 });
    expect(byType.level_up).toMatchObject({ device_id: 'dev-1', old_level: 1, new_level: 2 });
    expect(byType.level_up.rewards).toEqual([expect.objectContaining({ asset: 'points', amount: 50 })]);
    expect(byType.balance_changed).toMatchObject({ asset: 'points', balance: 50 });
    await tally.producer.affinityAdjust(
      { event_id: id('adj'), user_id: 'p-gina', device_id: 'dev-1', delta: -100, operator_id: 'op-1', reason: 'push test' },
      { wait: true },
    );
    const down = await gina.waitFor(1, (m) => m.type === 'level_down');
    expect(down[0]!.data).toEqual({ device_id: 'dev-1', old_level: 2, new_level: 1 });
    expect(new Set(gina.messages.map((m) => m.id)).size).toBe(gina.messages.length);
    expect(other.messages).toHaveLength(0);
  });

  it('with the fast path gone (relay killed between commit and enqueue), the sweep still delivers', async () => {
    pushSettings.fastPath = false;
    const client = await connect('p-erin');
    const g = await grant('p-erin', 42);
    const [row] = await world.sql`SELECT relayed_at FROM outbox WHERE data->>'transaction_id' = ${g.transaction_id}`;
    expect(row).toBeDefined();
    const [m] = await client.waitFor(1, undefined, 10_000);
    expect(m!.data).toEqual({ asset: 'points', balance: 42, transaction_id: g.transaction_id });
    // Published inside the relay transaction, so the mark may commit a moment after the client has it.
    await waitFor('row marked relayed', async () => {
      const [after] = await world.sql`SELECT relayed_at FROM outbox WHERE data->>'transaction_id' = ${g.transaction_id}`;
      return after!.relayed_at instanceof Date;
    });
  });

  it('a rolled-back change pushes nothing', async () => {
    const client = await connect('p-frank');
    await world.sql
      .begin(async (tx) => {
        await insertOutbox(tx, [{ user_id: 'p-frank', type: 'balance_changed', data: { asset: 'points', balance: 666, transaction_id: 'rolled-back' } }]);
        throw new Error('roll back');
      })
      .catch(() => {});
    outboxCommitted(1); // even a (wrong) notification finds nothing to relay
    // A committed change after it: once it arrives, every relay that could have sent the rolled-back row has run.
    await commitOutbox([{ user_id: 'p-frank', type: 'balance_changed', data: { asset: 'points', balance: 1, transaction_id: 'committed' } }]);
    await client.waitFor(1);
    await new Promise((r) => setTimeout(r, 2 * pushSettings.sweepEveryMs));
    expect(client.messages.map((m) => m.data.transaction_id)).toEqual(['committed']);
    const rows = await world.sql`SELECT 1 FROM outbox WHERE data->>'transaction_id' = 'rolled-back'`;
    expect(rows).toHaveLength(0);
  });

  it('heartbeats drop a peer that stops answering pings and keep a live one', async () => {
    const live = await connect('p-live');
    const dead = await connect('p-dead', { autoPong: false });
    await waitFor('dead peer dropped', async () => dead.closed, 10 * pushSettings.heartbeatMs);
    expect(live.closed).toBe(false);
    await commitOutbox([{ user_id: 'p-live', type: 'balance_changed', data: { asset: 'points', balance: 3, transaction_id: 'still-here' } }]);
    await live.waitFor(1);
  });
  // Last in this block: it leaves a long heartbeat timer armed.
  it('a slow consumer is disconnected once its buffer is full and does not hold up others', async () => {
    pushSettings.maxBufferedBytes = 64 * 1024;
    pushSettings.heartbeatMs = 60_000; // so it is the buffer bound, not the heartbeat, that drops the paused client
    const slow = await connect('p-slow');
    const fast = await connect('p-fast');
    const before = (await pushMetrics.slowDisconnects.get()).values[0]?.value ?? 0;
    // The slow client stops reading: its kernel buffers fill, then the server-side buffer.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const pad = 'x'.repeat(8_000);
    for (let i = 0; i < 4; i++) {
      await commitOutbox(Array.from({ length: 500 }, (_, k) => ({ user_id: 'p-slow', type: 'balance_changed' as const, data: { asset: 'points', balance: i * 500 + k, transaction_id: 'slow', pad } })));
    }
    await commitOutbox([{ user_id: 'p-fast', type: 'balance_changed', data: { asset: 'points', balance: 1, transaction_id: 'fast' } }]);
    await fast.waitFor(1);
    await waitFor('slow consumer dropped', async () => ((await pushMetrics.slowDisconnects.get()).values[0]?.value ?? 0) > before, 15_000);
    expect(slow.messages.length).toBeLessThan(2000);
  });

});

describe('GET /v1/stream authentication', () => {
  it('refuses missing, malformed, forged and expired tokens with 401 before the upgrade', async () => {
    const url = (t: string) => wsUrl(tally.base, t);
    const forged = signToken('not-the-secret-0123456789', { userId: 'p-alice', exp: Math.floor(Date.now() / 1000) + 60 });
    for (const t of ['', 'garbage', 'a.b.c', forged, tokenFor('p-alice', -1)]) {
      const res = await upgradeStatus(url(t));
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'unauthorized' } });
    }
    expect((await upgradeStatus(`${tally.base.replace('http', 'ws')}/v1/stream`)).status).toBe(401);
    // A valid token is accepted; a plain GET (no upgrade) is told to upgrade.
    const ok = await connect('p-alice');
    expect(ok.ws.readyState).toBe(ok.ws.OPEN);
    const plain = await fetch(`${tally.base}/v1/stream?token=${encodeURIComponent(tokenFor('p-alice'))}`);
    expect(plain.status).toBe(426);
    expect((await fetch(`${tally.base}/v1/stream?token=forged`)).status).toBe(401);
  });
});

describe('outbox retention', () => {
  it('outbox-prune deletes relayed rows past the retention period and keeps the rest', async () => {
    await commitOutbox([{ user_id: 'p-old', type: 'balance_changed', data: { mark: 'old' } }]);
    await commitOutbox([{ user_id: 'p-old', type: 'balance_changed', data: { mark: 'recent' } }]);
    await waitFor('both relayed', async () => {
      const [r] = await world.sql`SELECT count(*)::int AS n FROM outbox WHERE user_id = 'p-old' AND relayed_at IS NOT NULL`;
      return r!.n === 2;
    });
    // Age them as if published long ago (the relay stamps relayed_at with the wall clock).
    await world.sql`UPDATE outbox SET relayed_at = now() - interval '3 days' WHERE user_id = 'p-old' AND data->>'mark' = 'old'`;
    await world.sql`UPDATE outbox SET relayed_at = now() - interval '1 hour' WHERE user_id = 'p-old' AND data->>'mark' = 'recent'`;
    // Everything relayed before them is past the retention too (a prefix of the feed is pruned).
    await world.sql`UPDATE outbox SET relayed_at = now() - interval '4 days' WHERE seq < (SELECT seq FROM outbox WHERE data->>'mark' = 'old')`;
    const res = await tally.http('POST', '/v1/admin/maintenance/outbox-prune', undefined, ADMIN_TOKEN);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ task: 'outbox-prune', retention_hours: 24, consumers: [] });
    expect(res.body.deleted).toBeGreaterThanOrEqual(1);
    const marks = await world.sql`SELECT data->>'mark' AS mark FROM outbox WHERE user_id = 'p-old'`;
    expect(marks.map((r) => r.mark)).toEqual(['recent']);
  });
});
