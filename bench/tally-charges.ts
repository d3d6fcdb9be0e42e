import { runReconcile } from '../src/maintenance/reconcile.ts';
import { TallyProducer, type ChargeInput, type GrantInput } from '../src/producers/index.ts';
import { QUEUE } from '../src/queues/common.ts';
import { backendCpu } from './cpu.ts';
import { profiled } from './profile.ts';
import { addInChunks, timeDrain, waitDrained, waitForWorkers, waitUntil } from './drain.ts';
import type { BenchOptions } from './options.ts';
import { startWorkerSet } from './worker-set.ts';
import { CHARGE_PRICE, planCharges, type Measurement, type Variant } from './workload.ts';
import { createBenchWorld } from './world.ts';

/**
 * tally's figure: all charges enqueued into the paused `charges` queue through the producer SDK, balances
 * granted through the real `grants` queue and ledger (not timed), then the real ledger workers drain the
 * charges on the clock. Afterwards: reconcile must be ok and exactly `jobs` charges applied.
 */
export async function benchTallyCharges(opts: BenchOptions, variant: Variant, run: number, log: (m: string) => void): Promise<Measurement> {
  const name = `tally-${variant}`;
  const world = await createBenchWorld(opts, name);
  const producer = new TallyProducer({ redis: opts.redisUrl, prefix: world.prefix });
  const charges = producer.queue(QUEUE.charges);
  const grantsQ = producer.queue(QUEUE.grants);
  try {
    const plan = planCharges(opts, variant, `${name}-${run}`);
    await charges.pause();
    const grants: GrantInput[] = [...plan.grants].map(([user_id, amount]) => ({ event_id: `bench-grant-${user_id}`, user_id, asset: 'points', amount, source: 'recharge' }));
    await addInChunks((chunk) => producer.grantBulk(chunk), grants);
    await addInChunks((chunk) => producer.chargeBulk(chunk), plan.jobs.map((j) => j.data as unknown as ChargeInput));
    log(`${name}: ${grants.length} grants and ${plan.jobs.length} charges enqueued; starting workers`);

    const set = startWorkerSet(
      { kind: 'tally', databaseUrl: world.url, redisUrl: opts.redisUrl, prefix: world.prefix, concurrency: opts.concurrency, batchMax: opts.batchMax, batchParallel: opts.batchParallel, pool: opts.pool },
      opts.procs,
      world.childEnv,
    );
    try {
      await waitForWorkers(charges, Math.max(1, opts.procs));
      await waitDrained(grantsQ);
      await waitUntil('grants applied', async () => (await countApplied(world.sql, QUEUE.grants)) === grants.length, 30_000);
      const drain = await profiled(opts.profile, name, () => timeDrain(charges, { workerCpu: set.cpuMs, pgCpu: () => backendCpu(world.sql, world.dbName) }));
      if (drain.failed > 0) throw new Error(`${name}: ${drain.failed} charges failed, e.g. ${drain.failedReasons.join(' | ')}`);

      const applied = await countApplied(world.sql, QUEUE.charges);
      const reconcile = await runReconcile(world.sql);
      const [sum] = await world.sql<{ balance: bigint }[]>`SELECT coalesce(sum(balance), 0)::bigint AS balance FROM accounts`;
      const expected = BigInt([...plan.grants.values()].reduce((a, b) => a + b, 0) - plan.jobs.length * CHARGE_PRICE);
      // One xmin per committing transaction: how many ledger transactions the drain took, i.e. the batch size.
      const [tx] = await world.sql<{ commits: bigint }[]>`
        SELECT count(DISTINCT xmin::text) AS commits FROM processed_events WHERE queue = ${QUEUE.charges}`;
      const commits = Number(tx?.commits ?? 0n);
      const ok = reconcile.ok && applied === plan.jobs.length && sum!.balance === expected;
      const problems = [
        reconcile.ok ? '' : `reconcile: ${reconcile.violations.length} violations, e.g. ${JSON.stringify(reconcile.violations[0])}`,
        applied === plan.jobs.length ? '' : `applied ${applied} of ${plan.jobs.length}`,
        sum!.balance === expected ? '' : `Σ balance ${sum!.balance}, expected ${expected}`,
      ].filter(Boolean);
      return {
        name,
        rate: applied / drain.seconds,
        unit: 'mutations/s',
        count: applied,
        seconds: drain.seconds,
        workerCpuMsPerJob: drain.workerCpuMs / plan.jobs.length,
        pgCpuMsPerJob: drain.pgCpuMs / plan.jobs.length,
        redisCpuMsPerJob: drain.redisCpuMs / plan.jobs.length,
        ok,
        detail: `${commits} ledger transactions, ${(applied / Math.max(1, commits)).toFixed(0)} charges each, ${((drain.seconds * 1000) / Math.max(1, commits)).toFixed(1)} ms apart; event-loop delay p50 ${drain.loopDelayMs.p50.toFixed(1)} ms, p99 ${drain.loopDelayMs.p99.toFixed(1)} ms`,
        notes: problems.join('; ') || undefined,
      };
    } finally {
      await set.close();
    }
  } finally {
    await producer.close();
    await world.drop();
  }
}

async function countApplied(sql: import('../src/db/client.ts').Sql, queue: string): Promise<number> {
  const [row] = await sql<{ n: bigint }[]>`SELECT count(*) AS n FROM processed_events WHERE queue = ${queue} AND outcome = 'applied'`;
  return Number(row?.n ?? 0n);
}
