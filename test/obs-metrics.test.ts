import '../src/modules.ts'; // every feature module, as the CLI loads them: the webhooks worker and the job-stats sink
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flushJobStats, recordAlertSent } from '../src/ops/job-stats.ts';
import { deliveryId, WEBHOOKS_QUEUE } from '../src/webhooks/delivery.ts';
import { enqueueDeliveries } from '../src/webhooks/enqueue.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { ensurePromtool, promtool } from './helpers/promtool.ts';
import { startTally, waitFor, type InProcessTally } from './helpers/tally.ts';
import { startReceiver, type Receiver } from './helpers/webhook-receiver.ts';

const PROMTOOL = ensurePromtool('obs-metrics');
const SECRET = 'whsec-metrics-0123456789';
let world: TestWorld;
let tally: InProcessTally;
let rx: Receiver;

const scrape = async (t: InProcessTally = tally) => {
  const res = await fetch(`${t.base}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
};
const sample = (text: string, series: string) => {
  const m = new RegExp(`^${series.replace(/[{}()|+.*?[\]\\^$]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

beforeAll(async () => {
  world = await createWorld({ TALLY_WEBHOOK_BACKOFF_MS: '50', TALLY_WEBHOOK_BACKOFF_MAX_MS: '100', TALLY_WEBHOOK_RETRY_SECONDS: '60' });
  rx = await startReceiver(SECRET, (r) => ({ status: r.n === 1 ? 500 : 200 }));
  await world.applyConfig({
    assets: { points: { default_expiry_days: 180 }, credits: { default_expiry_days: null } },
    pricing: { points: { script: { mode: 'fixed', points: 5 } } },
    alerts: { low_balance: [{ asset: 'credits', below: 100 }] },
    webhooks: [{ id: 'ops', url: rx.url, secret: SECRET, events: ['alert'], allow_private_network: true }],
  });
  tally = await startTally(world);
}, 120_000);

afterAll(async () => {
  await tally?.stop();
  await rx?.close();
  await world?.drop();
});

describe.skipIf(!PROMTOOL)('/metrics', () => {
  it('passes `promtool check metrics` on a live scrape with every family populated', async () => {
    await tally.producer.grant({ event_id: 'm-g1', user_id: 'mo', asset: 'points', amount: 50, source: 'gift' }, { wait: true });
    await tally.producer.charge({ event_id: 'm-c1', user_id: 'mo', asset: 'points', source_type: 'script', source_id: 's', policy: 'postpaid' }, { wait: true });
    await tally.producer.charge({ event_id: 'm-c2', user_id: 'mo', asset: 'nope', source_type: 'script', source_id: 's', policy: 'postpaid' }).catch(() => {});
    const e = { id: 'ob-metrics-1', type: 'alert' as const, ts: new Date().toISOString(), user_id: 'mo', data: { kind: 'low_balance', asset: 'credits', balance: 5, threshold: 100 } };
    await enqueueDeliveries(tally.started.ctx, [e]);
    recordAlertSent('low_balance', 'credits');
    const job = () => tally.started.ctx.producer.queue(WEBHOOKS_QUEUE).getJob(deliveryId('ops', e.id));
    await waitFor('the delivery (a 500, then a 200)', async () => (await (await job())?.getState()) === 'completed');
    await flushJobStats();
    const text = await waitFor('the counters in Redis', async () => {
      const t = await scrape();
      return /tally_webhook_deliveries_total\{webhook="ops",result="delivered"\} 1/.test(t) ? t : undefined;
    });
    expect(sample(text, 'tally_webhook_deliveries_total{webhook="ops",result="http_status"}')).toBe(1);
    expect(sample(text, 'tally_webhook_delivery_seconds_count{webhook="ops"}')).toBe(2);
    expect(sample(text, 'tally_webhook_delivery_seconds_bucket{webhook="ops",le="+Inf"}')).toBe(2);
    expect(sample(text, 'tally_alerts_total{kind="low_balance",asset="credits"}')).toBe(1);
    expect(text).toMatch(/^tally_queue_jobs\{queue="webhooks",state="completed"\} \d+$/m);
    expect(text).toMatch(/^# TYPE tally_webhook_dead_total counter$/m);
    expect(text).toMatch(/^tally_metrics_snapshot_age_seconds \d/m);

    const check = promtool(PROMTOOL!, ['check', 'metrics'], text);
    expect(check.out).toBe('');
    expect(check.code).toBe(0);
    // What promtool used to flag: gauges named like counters.
    expect(text).not.toMatch(/^tally_nodejs_active_(handles|requests|resources)_total/m);
    expect(text).toMatch(/^tally_nodejs_active_handles\{type="\w+"\} \d+/m);
  });
});

describe('/metrics caching', () => {
  it('serves scrapes inside the cache period without touching PostgreSQL, and shares one refresh', async () => {
    const cached = await startTally(world, ['api'], { TALLY_METRICS_CACHE_MS: '60000' });
    const uncached = await startTally(world, ['api'], { TALLY_METRICS_CACHE_MS: '0' });
    const lock = await world.sql.reserve();
    try {
      const first = await scrape(cached);
      expect(sample(first, 'tally_metrics_snapshot_refreshes_total')).toBe(1);
      // A transaction holding the outbox table: any scrape that queried it would wait, time out and say so.
      await lock`BEGIN`;
      await lock`LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE`;
      const started = Date.now();
      const texts = await Promise.all(Array.from({ length: 25 }, () => scrape(cached)));
      for (const t of texts) {
        expect(sample(t, 'tally_scrape_error{part="outbox"}')).toBe(0);
        expect(sample(t, 'tally_metrics_snapshot_refreshes_total')).toBe(1);
      }
      expect(Date.now() - started).toBeLessThan(2500); // not one of them waited out the 3 s read timeout
      // The control: without the cache, a scrape does query the outbox, waits on the lock and reports it.
      const blocked = await scrape(uncached);
      expect(sample(blocked, 'tally_scrape_error{part="outbox"}')).toBe(1);
      expect(sample(blocked, 'tally_scrape_error{part="jobs"}')).toBe(0);
    } finally {
      await lock`ROLLBACK`.catch(() => {});
      lock.release();
      await cached.stop();
      await uncached.stop();
    }
  });

  it('shares one refresh among concurrent scrapes even with no cache period', async () => {
    const t = await startTally(world, ['api'], { TALLY_METRICS_CACHE_MS: '0' });
    try {
      const texts = await Promise.all(Array.from({ length: 10 }, () => scrape(t)));
      const counts = texts.map((x) => sample(x, 'tally_metrics_snapshot_refreshes_total'));
      expect(Math.max(...counts)).toBeLessThan(10);
      const after = await scrape(t);
      expect(sample(after, 'tally_metrics_snapshot_refreshes_total')).toBeGreaterThan(Math.max(...counts)); // period 0: the next scrape re-reads
    } finally {
      await t.stop();
    }
  });
});
