import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ConfigCache } from '../src/config/store.ts';
import { runLedger } from '../src/ledger/transaction.ts';
import { TallyProducer } from '../src/producers/index.ts';
import { deadlocks } from './helpers/deadlocks.ts';
import { createWorld, REDIS_URL, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { chargeCmd, grantCmd, outcomesOf, refundCmd } from './helpers/ledger-commands.ts';
import { spawnTally, startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

/**
 * A refund can overtake its charge: the batcher orders them inside one process only, and PM2 runs two. Such a
 * refund waits — retried like a transient fault, no attempt used — for up to TALLY_REFUND_WAIT_SECONDS from when it
 * first waited, then fails unknown_charge. It waits alone: its batch-mates are applied meanwhile.
 */
const worlds: TestWorld[] = [];
const children: ChildProcess[] = [];
let tally: InProcessTally | undefined;

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await tally?.stop();
  tally = undefined;
});
afterAll(async () => {
  for (const w of worlds) await w.drop();
});

async function world(extra: Record<string, string> = {}) {
  const w = await createWorld(extra);
  worlds.push(w);
  await w.applyExampleConfig();
  return w;
}

function workerProcess(w: TestWorld, extra: Record<string, string> = {}): ChildProcess {
  const child = spawnTally(w, ['start', '--role', 'worker'], extra);
  child.stderr?.on('data', () => {}); // drain: a full pipe would block the child
  child.stdout?.on('data', () => {});
  children.push(child);
  return child;
}

describe('a refund that overtakes its charge', () => {
  it('waits alone: its batch-mates apply, and it is neither applied nor dead-lettered', async () => {
    const w = await world();
    const configs = new ConfigCache();
    const report = await runLedger(w.sql, configs, [
      grantCmd('mate-g', 'mate', 10),
      refundCmd('early-rf', 'later-c', null, { waitForChargeUntil: Date.now() + 60_000 }),
      chargeCmd('mate-c', 'mate', 3),
    ]);
    expect(outcomesOf(report.outcomes)).toEqual(['applied', 'charge_not_applied', 'applied']);
    expect(await w.sql`SELECT 1 FROM processed_events WHERE event_id = 'early-rf'`).toHaveLength(0);
    expect(await w.sql`SELECT 1 FROM dead_letters WHERE event_id = 'early-rf'`).toHaveLength(0);
    // Its charge arrives; the refund's next attempt finds it.
    await runLedger(w.sql, configs, [chargeCmd('later-c', 'mate', 4)]);
    const again = await runLedger(w.sql, configs, [refundCmd('early-rf', 'later-c', null, { waitForChargeUntil: Date.now() + 60_000 })]);
    expect(again.outcomes[0]).toMatchObject({ ok: true, result: { outcome: 'applied', amount: 4, balance_after: 7 } });
  });

  it('through the queue: enqueued before its charge, applied once the charge is — no attempt used', async () => {
    const w = await world({ TALLY_REFUND_WAIT_SECONDS: '60' });
    tally = await startTally(w, ['worker']);
    await tally.producer.grant({ event_id: 'q-g', user_id: 'quick', asset: 'points', amount: 50, source: 'gift' }, { wait: true });
    const refund = tally.producer.refund({ event_id: 'q-rf', charge_event_id: 'q-c', amount: 5 }, { wait: true });
    await waitFor('the refund to wait', async () => {
      const job = await tally!.producer.queue('charges').getJob('q-rf');
      return job && (await job.getState()) === 'delayed';
    }, 15_000);
    await tally.producer.charge({ event_id: 'q-c', user_id: 'quick', asset: 'points', source_type: 'script', source_id: 's', amount: 8, policy: 'postpaid' }, { wait: true });
    expect(await refund).toMatchObject({ outcome: 'applied', amount: 5, balance_after: 47 });
    const job = await tally.producer.queue('charges').getJob('q-rf');
    expect(job!.attemptsMade).toBeLessThanOrEqual(1);
    await expectInvariants(w.sql);
  });

  it('a refund of a charge never applied fails unknown_charge once its wait is over, dead-lettered', async () => {
    const w = await world({ TALLY_REFUND_WAIT_SECONDS: '2' });
    tally = await startTally(w, ['worker']);
    const started = Date.now();
    const err = await tally.producer.refund({ event_id: 'nope-rf', charge_event_id: 'never-charged' }, { wait: true }).catch((e: Error) => e);
    expect(String((err as Error).message)).toMatch(/^unknown_charge: charge_event_id "never-charged"/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
    const [dl] = await w.sql`SELECT reason_code FROM dead_letters WHERE job_id = 'nope-rf'`;
    expect(dl!.reason_code).toBe('unknown_charge');
    const job = await tally.producer.queue('charges').getJob('nope-rf');
    expect(job!.attemptsMade).toBe(1);
  });

  it('waits from when it first waited, not from its job timestamp: a producer clock days ahead cannot make it wait for ever', async () => {
    const w = await world({ TALLY_REFUND_WAIT_SECONDS: '2' });
    tally = await startTally(w, ['worker']);
    // A raw BullMQ job whose timestamp lies ten days ahead (a skewed producer, or a test driving time).
    const job = await tally.producer.queue('charges').add(
      'refund',
      { type: 'refund', event_id: 'skew-rf', charge_event_id: 'never-charged-2' },
      { jobId: 'skew-rf', timestamp: Date.now() + 10 * 86_400_000 },
    );
    const err = await tally.producer.result('charges', job, 20_000).catch((e: Error) => e);
    expect(String((err as Error).message)).toMatch(/^unknown_charge: charge_event_id "never-charged-2"/);
  });

  it('two worker processes, one SIGKILLed while refunds of charges in the other are in flight: every event once', async () => {
    const w = await world({ TALLY_LOCK_DURATION_MS: '2000', TALLY_REFUND_WAIT_SECONDS: '120' });
    const producer = new TallyProducer({ redis: REDIS_URL, prefix: w.env.TALLY_PREFIX });
    try {
      const users = 40;
      await producer.grantBulk(Array.from({ length: users }, (_, u) => ({ event_id: `kg-${u}`, user_id: `k${u}`, asset: 'points', amount: 100, source: 'gift' })), { batch: false });
      const charges = Array.from({ length: 150 }, (_, i) => ({
        event_id: `kc-${i}`, user_id: `k${i % users}`, asset: 'points', source_type: 'script', source_id: `x${i}`, amount: 1 + (i % 5), policy: 'postpaid' as const,
      }));
      const refunds = charges.map((c, i) => ({ event_id: `kr-${i}`, charge_event_id: c.event_id, ...(i % 3 === 0 ? { amount: 1 } : {}) }));
      workerProcess(w);
      const victim = workerProcess(w);
      // Refunds first, charges interleaved behind them: most refunds overtake their charge, in either process.
      for (let i = 0; i < charges.length; i += 50) {
        await Promise.all(refunds.slice(i, i + 50).map((r) => producer.refund(r)));
        await producer.chargeBulk(charges.slice(i, i + 50), { batch: false });
      }
      await waitFor('some refunds applied', async () => {
        const [{ n }] = (await w.sql`SELECT count(*)::int AS n FROM refunds`) as unknown as [{ n: number }];
        return n > 20;
      }, 60_000, 20);
      victim.kill('SIGKILL');
      await new Promise((r) => victim.once('exit', r));
      workerProcess(w);
      const total = users + charges.length + refunds.length;
      await waitFor('every event decided', async () => {
        const [{ n }] = (await w.sql`SELECT count(*)::int AS n FROM processed_events`) as unknown as [{ n: number }];
        return n >= total;
      }, 180_000, 250);
      const [{ entries }] = (await w.sql`SELECT count(*)::int AS entries FROM ledger_entries WHERE event_id IS NOT NULL`) as unknown as [{ entries: number }];
      expect(entries).toBe(total);
      const [{ refunded }] = (await w.sql`SELECT count(*)::int AS refunded FROM refunds`) as unknown as [{ refunded: number }];
      expect(refunded).toBe(refunds.length);
      const [{ consumed }] = (await w.sql`SELECT sum(total_consumed)::int AS consumed FROM accounts`) as unknown as [{ consumed: number }];
      const charged = charges.reduce((s, c) => s + c.amount, 0);
      const given = refunds.reduce((s, r, i) => s + ('amount' in r ? 1 : charges[i]!.amount), 0);
      expect(consumed).toBe(charged - given);
      expect(await producer.queue('charges').getJobCounts('failed')).toEqual({ failed: 0 });
      // Stopped, so their connections close and report their statistics (deadlocks among them).
      const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
      await Promise.all(running.map((c) => new Promise((r) => (c.once('exit', r), c.kill('SIGTERM')))));
      expect(await deadlocks(w.sql, w.dbName)).toBe(0);
      await expectInvariants(w.sql);
    } finally {
      await producer.close();
    }
  }, 180_000);
});
