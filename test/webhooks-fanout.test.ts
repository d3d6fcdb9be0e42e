import '../src/modules.ts'; // the fan-out, the webhooks worker and the job-stats sink register here, as the CLI loads them
import type { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigCache } from '../src/config/store.ts';
import { createDb, type Sql } from '../src/db/client.ts';
import { runLedger } from '../src/ledger/transaction.ts';
import { TallyProducer } from '../src/producers/index.ts';
import { feedCursor, registerFeedConsumer } from '../src/push/sql/feed-cursors.ts';
import { feedBounds } from '../src/push/sql/read-feed.ts';
import { sequenceOutbox } from '../src/push/sql/sequence-outbox.ts';
import { deliveryId, WEBHOOKS_QUEUE, type DeliveryJob } from '../src/webhooks/delivery.ts';
import { FANOUT_CONSUMER, fanOutPage, type FanoutDeps } from '../src/webhooks/fanout.ts';
import { createWorld, PG_BASE, REDIS_URL, type TestWorld } from './helpers/env.ts';
import { grantCmd } from './helpers/ledger-commands.ts';
import { startReceiver, type Receiver } from './helpers/webhook-receiver.ts';

/**
 * The outbox → webhook fan-out, driven directly (no worker running): the committed feed after the cursor becomes
 * one delivery per (row, webhook listing its type); the cursor moves only after the enqueue; one process at a time.
 */
const SECRET = 'whsec-fanout-0123456789';
let world: TestWorld;
let producer: TallyProducer;
let queue: Queue;
let rx: Receiver;
const configs = new ConfigCache();
const pools: Sql[] = [];

beforeAll(async () => {
  world = await createWorld();
  rx = await startReceiver(SECRET);
  producer = new TallyProducer({ redis: REDIS_URL, prefix: world.env.TALLY_PREFIX });
  queue = producer.queue(WEBHOOKS_QUEUE);
  await useWebhooks(['balance_changed']);
  await registerFeedConsumer(world.sql, FANOUT_CONSUMER);
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end({ timeout: 5 })));
  await producer?.close();
  await rx?.close();
  await world?.drop();
});

async function useWebhooks(events: string[] | null): Promise<void> {
  await world.applyConfig({
    assets: { points: { default_expiry_days: null } },
    webhooks: events === null ? [] : [{ id: 'hook', url: rx.url, secret: SECRET, events, allow_private_network: true }],
  });
}

/** Commits `n` grants (one balance_changed each) and sequences them into the feed; returns the rows' seqs. */
let k = 0;
async function feedRows(n: number): Promise<bigint[]> {
  const before = (await feedBounds(world.sql)).head;
  for (let i = 0; i < n; i += 250) {
    await runLedger(world.sql, configs, Array.from({ length: Math.min(250, n - i) }, () => grantCmd(`fo-${++k}`, `fan-${k % 7}`, 1)));
  }
  while ((await sequenceOutbox(world.sql, 1000)).sequenced > 0) {
    // sequence everything committed
  }
  const head = (await feedBounds(world.sql)).head;
  expect(head - before).toBe(BigInt(n));
  return Array.from({ length: n }, (_, i) => before + BigInt(i + 1));
}

/** A delivery context over the real queue that counts (and can fail or slow) what the fan-out enqueues. */
function countingDeps(sql: Sql, opts: { failOnce?: boolean; delayMs?: number } = {}) {
  const seen: string[] = [];
  let fail = opts.failOnce ?? false;
  const wrapped = {
    async addBulk(jobs: { data: DeliveryJob; opts?: { jobId?: string } }[]) {
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      if (fail) {
        fail = false;
        throw new Error('Redis went away');
      }
      seen.push(...jobs.map((j) => j.opts!.jobId!));
      return queue.addBulk(jobs as never);
    },
  };
  const deps: FanoutDeps = { sql, configs: new ConfigCache(), delivery: { producer: { queue: () => wrapped as unknown as Queue }, configs: new ConfigCache(), sql } };
  return { deps, seen };
}

async function drainAll(deps: FanoutDeps): Promise<void> {
  for (;;) {
    const r = await fanOutPage(deps);
    if (r === 'busy') await new Promise((res) => setTimeout(res, 5));
    else if (r === 'idle' && (await feedCursor(world.sql, FANOUT_CONSUMER)) === (await feedBounds(world.sql)).head) return;
  }
}

const jobCount = async () => Object.values(await queue.getJobCounts('waiting', 'delayed', 'active', 'completed', 'failed', 'prioritized')).reduce((a, b) => a + b, 0);

describe('webhook fan-out from the outbox feed', () => {
  it('turns each committed row into one delivery per subscribed webhook, with the feed id, and moves the cursor to the last', async () => {
    const seqs = await feedRows(3);
    const { deps, seen } = countingDeps(world.sql);
    expect(await fanOutPage(deps)).toBe('idle');
    expect(seen).toEqual(seqs.map((s) => deliveryId('hook', `ob-${s}`)));
    const job = await queue.getJob(seen[0]!);
    const [row] = await world.sql<{ user_id: string; data: object; created_at: Date }[]>`SELECT user_id, data, created_at FROM outbox WHERE seq = ${seqs[0]!}`;
    expect(job!.data.event).toEqual({ id: `ob-${seqs[0]}`, type: 'balance_changed', ts: row!.created_at.toISOString(), user_id: row!.user_id, data: row!.data });
    expect(await feedCursor(world.sql, FANOUT_CONSUMER)).toBe(seqs.at(-1));
  });

  it('leaves the cursor where it was when the enqueue fails, and a repeat of a page enqueues nothing twice', async () => {
    const seqs = await feedRows(4);
    const cursor = await feedCursor(world.sql, FANOUT_CONSUMER);
    const failing = countingDeps(world.sql, { failOnce: true });
    await expect(fanOutPage(failing.deps)).rejects.toThrow(/Redis went away/);
    expect(await feedCursor(world.sql, FANOUT_CONSUMER)).toBe(cursor);
    const before = await jobCount();
    expect(await fanOutPage(failing.deps)).toBe('idle'); // the same page again, now enqueued
    expect(failing.seen).toHaveLength(4);
    expect(await jobCount()).toBe(before + 4);
    // A crash after the enqueue and before the commit means the page runs again: the delivery ids dedupe it.
    await world.sql`UPDATE outbox_cursors SET position = ${cursor!} WHERE consumer = ${FANOUT_CONSUMER}`;
    expect(await fanOutPage(countingDeps(world.sql).deps)).toBe('idle');
    expect(await jobCount()).toBe(before + 4);
    expect(await feedCursor(world.sql, FANOUT_CONSUMER)).toBe(seqs.at(-1));
  });

  it('skips rows no webhook lists, and with no webhook at all moves to the head without reading', async () => {
    await useWebhooks(['alert']);
    await feedRows(3);
    const a = countingDeps(world.sql);
    expect(await fanOutPage(a.deps)).toBe('idle');
    expect(a.seen).toEqual([]);
    await useWebhooks(null);
    const seqs = await feedRows(2);
    expect(await fanOutPage(a.deps)).toBe('idle');
    expect(await feedCursor(world.sql, FANOUT_CONSUMER)).toBe(seqs.at(-1));
    await useWebhooks(['balance_changed']);
  });

  it('two processes fanning out at once: every row is enqueued exactly once, none twice (the advisory lock)', async () => {
    const seqs = await feedRows(1600); // four pages
    const mk = () => {
      const sql = createDb(`${PG_BASE}/${world.dbName}`, { max: 3 });
      pools.push(sql);
      return countingDeps(sql, { delayMs: 30 }); // a slow enqueue: the other process surely tries meanwhile
    };
    const p1 = mk();
    const p2 = mk();
    await Promise.all([drainAll(p1.deps), drainAll(p2.deps), drainAll(p1.deps), drainAll(p2.deps)]);
    const all = [...p1.seen, ...p2.seen];
    expect(all).toHaveLength(seqs.length);
    expect(new Set(all)).toEqual(new Set(seqs.map((s) => deliveryId('hook', `ob-${s}`))));
  });
});
