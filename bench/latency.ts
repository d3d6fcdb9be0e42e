import { Queue, QueueEvents } from 'bullmq';
import { TallyProducer } from '../src/producers/index.ts';
import { QUEUE } from '../src/queues/common.ts';
import { createRedis } from '../src/redis.ts';
import { sleep, waitUntil } from './drain.ts';
import { verifyCharges } from './ledger-verify.ts';
import type { BenchOptions } from './options.ts';
import { grantAll, startTally } from './tally-charges.ts';
import { chargeJob, CHARGE_PRICE, xorshift, type Measurement } from './workload.ts';
import { createBenchWorld } from './world.ts';

/** Arrivals in the first second of a level are not counted: the worker's batches are still finding their size. */
const SETTLE_S = 1;

const STREAM_LEN = 200_000;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * `--latency`: add → applied latency of single-event charges at fractions (--latency-levels, default 25 %, 50 %,
 * 75 %) of `peak`, the single-event rate tally-uniform drained in this same run.
 *
 * Open loop: event i of a level is due at t0 + i / rate whatever has completed, and its latency counts from that
 * due time — a producer falling behind (Redis slow to take the add) is charged to the latency, not hidden
 * (no coordinated omission). "Applied" is the moment the bench hears BullMQ's `completed` event for the job
 * (QueueEvents): the worker completes a job only after its ledger transaction committed, so this is when a
 * producer waiting on the result (`producer.charge(…, { wait: true })`) would see it — Redis's event stream and
 * this process's loop included. processed_events.created_at is not used: it is the transaction's clock, taken
 * before the commit, and would flatter the figure by the commit and the hand-back.
 */
export async function benchLatency(opts: BenchOptions, peak: number, run: number, log: (m: string) => void): Promise<Measurement[]> {
  const name = 'latency';
  const world = await createBenchWorld(opts, name);
  const producer = new TallyProducer({ redis: opts.redisUrl, prefix: world.prefix });
  const charges = producer.queue(QUEUE.charges);
  const eventsConn = createRedis(opts.redisUrl);
  const events = new QueueEvents(QUEUE.charges, { connection: eventsConn, prefix: world.prefix, autorun: false });
  try {
    // Every level's arrivals, decided up front so the grants cover them exactly.
    const tag = `lat-${run}`;
    const rand = xorshift(0x1a7e);
    // A warm-up level first (half the peak for 3 s, not reported): a fresh worker process has cold JIT, cold
    // prepared statements and a cold database, which would otherwise land on the first level alone.
    const plan = [{ share: 0.5, seconds: Math.min(3, opts.latencySeconds), warmup: true }, ...opts.latencyLevels.map((share) => ({ share, seconds: opts.latencySeconds, warmup: false }))];
    const levels = plan.map(({ share, seconds, warmup }, l) => {
      const rate = share * peak;
      const n = Math.max(1, Math.round(rate * seconds));
      return { share, rate, warmup, users: Array.from({ length: n }, () => Math.floor(rand() * opts.users)), idPrefix: `bench-${tag}-${l}-` };
    });
    const perUser = new Map<string, number>();
    for (const l of levels) for (const u of l.users) perUser.set(`user-${u}`, (perUser.get(`user-${u}`) ?? 0) + 1);
    const granted = await grantAll(producer, new Map([...perUser].map(([u, c]) => [u, (c + 10) * CHARGE_PRICE])));
    const total = levels.reduce((a, l) => a + l.users.length, 0);

    const done = new Map<string, number>();
    events.on('completed', ({ jobId }) => done.set(jobId, performance.now()));
    void events.run().catch((err) => log(`latency: QueueEvents stopped: ${(err as Error).message}`));
    await events.waitUntilReady();

    const set = await startTally(opts, world, producer, perUser.size);
    const out: Measurement[] = [];
    // BullMQ trims the queue's event stream to 10,000 entries (about 2,500 jobs: added, waiting, active, completed);
    // at thousands of jobs a second one slow turn of this process's loop would lose completions. A longer stream
    // costs Redis the same per entry. Set last, so no other Queue object of the charges queue resets it.
    const metaConn = createRedis(opts.redisUrl);
    const meta = new Queue(QUEUE.charges, { connection: metaConn, prefix: world.prefix, streams: { events: { maxLen: STREAM_LEN } } });
    await meta.waitUntilReady();
    await waitUntil('event stream length', async () => (await meta.getMeta()).maxLenEvents === STREAM_LEN, 10_000);
    try {
      for (const level of levels) {
        const n = level.users.length;
        const due = new Float64Array(n);
        const gapMs = 1000 / level.rate;
        await sleep(500); // the previous level's tail is done (waited below); let the worker go idle
        const t0 = performance.now() + 20;
        let i = 0;
        let maxLagMs = 0;
        while (i < n) {
          const now = performance.now();
          const upto = Math.min(n, Math.floor((now - t0) / gapMs) + 1);
          if (upto <= i) {
            await sleep(Math.max(0, Math.min(2, t0 + i * gapMs - now)));
            continue;
          }
          const jobs = [];
          for (; i < upto; i++) {
            due[i] = t0 + i * gapMs;
            jobs.push(chargeJob(`${level.idPrefix}${i}`, `user-${level.users[i]}`, i));
          }
          maxLagMs = Math.max(maxLagMs, now - due[jobs.length > 0 ? i - jobs.length : i]!);
          await charges.addBulk(jobs);
        }
        const sent = performance.now();
        const achieved = n / ((sent - t0) / 1000);
        await waitUntil(`latency level ${level.share}: completions`, async () => {
          let c = 0;
          for (let k = 0; k < n; k++) if (done.has(`${level.idPrefix}${k}`)) c++;
          return c === n;
        }, 120_000, 200).catch(() => undefined);
        const lat: number[] = [];
        let missing = 0;
        for (let k = 0; k < n; k++) {
          const at = done.get(`${level.idPrefix}${k}`);
          if (at === undefined) missing++;
          else if (k * gapMs >= SETTLE_S * 1000) lat.push(at - due[k]!); // by index: (t0 + k·gap) − t0 may round below
        }
        lat.sort((a, b) => a - b);
        // Cross-check on the worker's side: BullMQ's finishedOn − timestamp (both Date.now(), the worker's and the
        // producer's) of the last jobs BullMQ keeps — from the add, not the due time, and without the event stream.
        const sample = await Promise.all(Array.from({ length: Math.min(200, n) }, (_, k) => charges.getJob(`${level.idPrefix}${n - 1 - k}`)));
        const side = sample.filter((j) => j?.finishedOn).map((j) => j!.finishedOn! - j!.timestamp).sort((a, b) => a - b);
        const p50 = percentile(lat, 50);
        const p99 = percentile(lat, 99);
        const pct = `${Math.round(level.share * 100)}%`;
        const detail = `${Math.round(level.rate)}/s target (${pct} of peak ${Math.round(peak)}/s), ${Math.round(achieved)}/s sent, ${n} events, ${lat.length} counted; p50 ${p50.toFixed(1)} ms, p90 ${percentile(lat, 90).toFixed(1)}, p99 ${p99.toFixed(1)}, max ${lat.at(-1)?.toFixed(1)} ms; producer lag max ${maxLagMs.toFixed(1)} ms; worker-side finishedOn − timestamp of the last ${side.length}: p50 ${percentile(side, 50)} ms, p99 ${percentile(side, 99)} ms`;
        if (level.warmup) {
          log(`  latency warm-up: ${detail}`);
          continue;
        }
        log(`  latency ${pct}: ${detail}${missing ? `; ${missing} completions not heard` : ''}`);
        const notes = missing ? `${missing} of ${n} completions not heard within 120 s` : undefined;
        out.push(
          { name: `latency-p50@${pct}`, rate: p50, unit: 'ms add→applied', versus: null, count: lat.length, detail, ok: missing === 0, notes },
          { name: `latency-p99@${pct}`, rate: p99, unit: 'ms add→applied', versus: null, count: lat.length, ok: missing === 0, notes },
        );
      }
      const check = await verifyCharges(world.sql, `bench-${tag}-`, total, granted);
      if (!check.ok) for (const m of out) Object.assign(m, { ok: false, notes: [m.notes, ...check.problems].filter(Boolean).join('; ') });
      return out;
    } finally {
      await set.close();
      await meta.close();
      metaConn.disconnect();
    }
  } finally {
    await events.close();
    eventsConn.disconnect();
    await producer.close();
    await world.drop();
  }
}
