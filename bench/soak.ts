import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { TallyProducer } from '../src/producers/index.ts';
import { QUEUE } from '../src/queues/common.ts';
import { pendingCount, sleep, waitDrained } from './drain.ts';
import { verifyCharges } from './ledger-verify.ts';
import type { BenchOptions } from './options.ts';
import { soakSvg, type SoakPoint } from './plot.ts';
import type { ProbeSample } from './child-probe.ts';
import { grantAll, startTally } from './tally-charges.ts';
import { chargeJob, CHARGE_PRICE, xorshift, type Measurement } from './workload.ts';
import { createBenchWorld } from './world.ts';

/** Events kept waiting in the queue while the soak feeds it: enough that the worker never idles. */
const BACKLOG = 20_000;
const CHUNK = 1_000;
/** The first fifth of the events is warm-up: V8's heap and postgres.js's caches still grow there. */
const WARMUP_SHARE = 0.2;

/**
 * `--soak`: --soak-events (1M) uniform guarded charges through ONE tally worker process, fed so that about
 * 20,000 wait at any time; every --sample-seconds the worker reports its RSS, heap and event-loop delay
 * (bench/child-probe.ts over IPC). After warm-up RSS should stay flat within 10 % (no drift; see below). Writes the samples as JSON
 * and the plot as SVG (--soak-svg, default docs/soak.svg), and verifies the ledger at the end.
 */
export async function benchSoak(opts: BenchOptions, log: (m: string) => void): Promise<Measurement[]> {
  const name = 'soak';
  const n = opts.soakEvents;
  const world = await createBenchWorld(opts, name);
  const producer = new TallyProducer({ redis: opts.redisUrl, prefix: world.prefix });
  const charges = producer.queue(QUEUE.charges);
  try {
    // Users first (same dice as the enqueueing below), so each gets exactly what its charges need plus slack.
    const users = new Uint32Array(n);
    const perUser = new Uint32Array(opts.users);
    const rand = xorshift(0x50a6);
    for (let i = 0; i < n; i++) perUser[(users[i] = Math.floor(rand() * opts.users))]!++;
    const granted = await grantAll(producer, new Map([...perUser].map((c, u) => [`user-${u}`, (c + 10) * CHARGE_PRICE])));
    const set = await startTally({ ...opts, procs: 1 }, world, producer, opts.users);
    const probe = set.probes![0]!;
    const points: SoakPoint[] = [];
    let enqueued = 0;
    let pending = 0;
    try {
      const t0 = performance.now();
      const point = (s: ProbeSample) =>
        points.push({ t: (performance.now() - t0) / 1000, events: enqueued - pending, rssMb: s.rssBytes / 2 ** 20, heapMb: s.heapUsedBytes / 2 ** 20, eldP99Ms: s.eld?.p99 ?? null, eldMaxMs: s.eld?.max ?? null });
      point(await probe.sample());
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          await sleep(opts.sampleSeconds * 1000);
          const s = await probe.sample();
          pending = await pendingCount(charges);
          point(s);
          const last = points.at(-1)!;
          if (points.length % Math.max(1, Math.round(30 / opts.sampleSeconds)) === 0) {
            log(`  soak: ${last.events.toLocaleString('en-US')} / ${n.toLocaleString('en-US')} events, RSS ${last.rssMb.toFixed(0)} MB, loop p99 ${last.eldP99Ms?.toFixed(1)} ms`);
          }
        }
      })();
      const tag = `soak-${Date.now().toString(36)}`;
      while (enqueued < n) {
        pending = await pendingCount(charges);
        if (pending > BACKLOG) {
          await sleep(50);
          continue;
        }
        const upto = Math.min(n, enqueued + BACKLOG / 2);
        for (; enqueued < upto; ) {
          const jobs = [];
          for (const end = Math.min(upto, enqueued + CHUNK); enqueued < end; enqueued++) jobs.push(chargeJob(`bench-${tag}-${enqueued}`, `user-${users[enqueued]}`, enqueued));
          await charges.addBulk(jobs);
        }
      }
      await waitDrained(charges, 3_600_000);
      const seconds = (performance.now() - t0) / 1000;
      pending = 0;
      sampling = false;
      await sampler;
      const failed = await charges.getFailedCount();
      log(`  soak: drained in ${seconds.toFixed(0)} s; verifying the ledger`);
      const v0 = performance.now();
      const check = await verifyCharges(world.sql, `bench-${tag}-`, n, granted);
      log(`  soak: verified in ${((performance.now() - v0) / 1000).toFixed(0)} s`);
      if (failed > 0) check.problems.push(`${failed} jobs failed`);

      const warmEvents = n * WARMUP_SHARE;
      const warmupT = points.find((p) => p.events >= warmEvents)?.t ?? 0;
      const after = points.filter((p) => p.t >= warmupT);
      const rss = after.map((p) => p.rssMb);
      const minRss = Math.min(...rss);
      const maxRss = Math.max(...rss);
      const growth = (maxRss - minRss) / minRss;
      // RSS follows V8's heap in a sawtooth (tens of MB between collections), so "flat" is judged on the drift:
      // median RSS of the last quarter of the post-warm-up samples against the first quarter's. A leak drifts;
      // the sawtooth does not. The spread (max − min) is reported beside it.
      const quarter = Math.max(1, Math.floor(rss.length / 4));
      const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const firstQ = med(rss.slice(0, quarter));
      const lastQ = med(rss.slice(-quarter));
      const drift = (lastQ - firstQ) / firstQ;
      const eldP99 = after.map((p) => p.eldP99Ms ?? 0).sort((a, b) => a - b);
      const eldMax = Math.max(...after.map((p) => p.eldMaxMs ?? 0));
      const median = (xs: number[]) => xs[Math.floor(xs.length / 2)] ?? 0;
      const flat = Math.abs(drift) <= 0.1;
      const summary = `${n.toLocaleString('en-US')} events in ${seconds.toFixed(0)} s; RSS after warm-up (${warmupT.toFixed(0)} s): median ${firstQ.toFixed(0)} MB in its first quarter, ${lastQ.toFixed(0)} MB in its last (drift ${(drift * 100).toFixed(1)} %: ${flat ? 'flat within 10 %' : '**not flat within 10 %**'}), range ${minRss.toFixed(0)}–${maxRss.toFixed(0)} MB (${(growth * 100).toFixed(1)} % spread, GC sawtooth); loop delay p99 per sample median ${median(eldP99).toFixed(1)} ms, worst ${eldP99.at(-1)?.toFixed(1)} ms, max ${eldMax.toFixed(0)} ms`;
      log(`  soak: ${summary}`);

      const json = opts.soakSvg.replace(/\.svg$/, '') + '.json';
      mkdirSync(dirname(opts.soakSvg), { recursive: true });
      writeFileSync(json, `${JSON.stringify({ events: n, seconds, warmupSeconds: warmupT, sampleSeconds: opts.sampleSeconds, points }, null, 1)}\n`);
      writeFileSync(opts.soakSvg, await soakSvg(points, warmupT, `tally worker, ${n.toLocaleString('en-US')} charges (one process, ${(n / seconds).toFixed(0)}/s)`, firstQ));
      log(`  soak: wrote ${opts.soakSvg} and ${json}`);
      const ok = check.ok;
      const notes = check.problems.join('; ') || undefined;
      return [
        { name: 'soak', rate: n / seconds, unit: 'events/s', count: n, seconds, ok, notes, detail: summary },
        { name: 'soak-rss-drift', rate: drift * 100, unit: `% RSS drift after warm-up (${firstQ.toFixed(0)} → ${lastQ.toFixed(0)} MB)`, versus: null },
        { name: 'soak-rss-spread', rate: growth * 100, unit: `% RSS max−min after warm-up (${minRss.toFixed(0)}–${maxRss.toFixed(0)} MB)`, versus: null },
        { name: 'soak-eld-p99', rate: median(eldP99), unit: 'ms loop delay p99 (median sample)', versus: null },
      ];
    } finally {
      await set.close();
    }
  } finally {
    await producer.close();
    await world.drop();
  }
}
