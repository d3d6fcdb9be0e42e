// Issue 5's bench, group-committed in issue 13: hold + settle pairs per second — POST /v1/holds over HTTP, then a
// `charge` with hold_id through the `charges` queue — with every invariant checked afterwards, measured twice in the
// same run: with hold requests group-committed (TALLY_HOLD_BATCH_MAX, the default) and with one transaction per hold
// request (TALLY_HOLD_BATCH_MAX=1, the design before issue 13), and the ratio between the two printed. Part of
// `npm run bench` (--only holds); alone: `node --import tsx bench/holds.ts [--quick] [--procs 1]` (--procs ≥ 1: tally in
// a process of its own, the client here).
import '../src/money/register.ts';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseEnv } from '../src/config/env.ts';
import { startProcess } from '../src/cli/process.ts';
import { runReconcile } from '../src/maintenance/reconcile.ts';
import { TallyProducer } from '../src/producers/index.ts';
import { backendCpu, cpuBetween, pidsCpu } from './cpu.ts';
import { parseBenchOptions } from './options.ts';
import type { Measurement, WorkloadContext } from './workload.ts';
import { createBenchWorld } from './world.ts';

const USAGE_ESTIMATE = { model: 'gpt-4o-mini', input_tokens: 1000, output_tokens: 2250 }; // holds 10 credits
const ACTUAL = { model: 'gpt-4o-mini', input_tokens: 1000, output_tokens: 500 }; // costs 3 credits

/** The two ways an API process applies hold requests: the baseline first, so a warming machine favours it. */
const MODES = [
  { name: 'holds-per-request', label: 'one transaction per hold request', env: { TALLY_HOLD_BATCH_MAX: '1' } },
  { name: 'holds', label: 'hold requests group-committed', env: {} as Record<string, string> },
] as const;

export async function benchHolds(ctx: WorkloadContext): Promise<Measurement[]> {
  const results: Measurement[] = [];
  for (const mode of MODES) results.push(await measureHolds(ctx, mode));
  const [before, after] = results as [Measurement, Measurement];
  const ratio = after.rate / before.rate;
  after.detail = `${after.detail}; ${ratio.toFixed(2)}× the ${before.rate.toFixed(0)} pairs/s of one transaction per hold request (same run)`;
  ctx.log(`holds: group-committed ${after.rate.toFixed(0)} pairs/s, one transaction per request ${before.rate.toFixed(0)} pairs/s → ${ratio.toFixed(2)}×`);
  return results;
}

async function measureHolds(ctx: WorkloadContext, mode: (typeof MODES)[number]): Promise<Measurement> {
  const pairs = ctx.opts.quick ? 500 : 5000;
  const users = Math.min(ctx.opts.users, pairs); // uniform over the run's users, like the charges workload
  const inFlight = 64;
  const world = await ctx.createWorld(mode.name);
  const tally = await startTally({ ...world.childEnv, LOG_LEVEL: 'warn', ...mode.env }, ctx.opts.procs > 0);
  const producer = new TallyProducer({ redis: ctx.opts.redisUrl, prefix: world.prefix });
  const base = `http://127.0.0.1:${tally.port}`;
  const auth = { authorization: `Bearer ${world.childEnv.TALLY_API_TOKEN}`, 'content-type': 'application/json' };
  const tag = `r${ctx.run}`;
  try {
    await producer.grantBulk(Array.from({ length: users }, (_, u) => ({ event_id: `seed-${tag}-${u}`, user_id: `u${u}`, asset: 'credits', amount: 1_000_000_000, source: 'recharge' })));
    await until(async () => (await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM accounts WHERE total_granted > 0`)[0]!.n === users);

    let next = 0;
    let refused = 0;
    let holdMs = 0;
    let enqueueMs = 0;
    // CPU per pair, the steadier figure on a shared box: tally (in this process: the client's share too) and PostgreSQL.
    const pgBefore = await backendCpu(world.sql, world.dbName);
    const cpuBefore = tally.cpuMs();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        for (let i = next++; i < pairs; i = next++) {
          const user = `u${i % users}`;
          const th = performance.now();
          const res = await fetch(`${base}/v1/holds`, {
            method: 'POST',
            headers: auth,
            body: JSON.stringify({ event_id: `h-${tag}-${i}`, user_id: user, asset: 'credits', source_type: 'llm', usage_estimate: USAGE_ESTIMATE, ttl_seconds: 600 }),
          });
          const hold = (await res.json()) as { hold_id?: string };
          holdMs += performance.now() - th;
          if (res.status !== 201 || !hold.hold_id) {
            refused++;
            continue;
          }
          const te = performance.now();
          await producer.charge({ event_id: `s-${tag}-${i}`, user_id: user, asset: 'credits', source_type: 'llm', source_id: `req-${i}`, hold_id: hold.hold_id, usage: ACTUAL });
          enqueueMs += performance.now() - te;
        }
      }),
    );
    const holdsSeconds = (performance.now() - t0) / 1000;
    await until(async () => (await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM holds WHERE status = 'settled'`)[0]!.n === pairs - refused);
    const seconds = (performance.now() - t0) / 1000;
    const tallyCpuMs = tally.cpuMs() - cpuBefore;
    const pgCpuMs = cpuBetween(pgBefore, await backendCpu(world.sql, world.dbName));

    const [totals] = await world.sql<{ consumed: bigint; held: bigint }[]>`
      SELECT (SELECT sum(total_consumed) FROM accounts)::bigint AS consumed,
             (SELECT coalesce(sum(amount), 0) FROM holds WHERE status = 'active')::bigint AS held`;
    const reconcile = await runReconcile(world.sql);
    const ok = refused === 0 && reconcile.ok && totals!.consumed === BigInt(pairs * 3) && totals!.held === 0n;
    return {
      name: mode.name,
      rate: pairs / seconds,
      unit: 'pairs/s',
      count: pairs,
      seconds,
      ok,
      workerCpuMsPerJob: tallyCpuMs / pairs,
      pgCpuMsPerJob: pgCpuMs / pairs,
      detail: `${mode.label}: ${users} users, ${inFlight} clients in flight; each pair = HTTP hold (10) + queued settle (3); mean hold ${(holdMs / pairs).toFixed(1)} ms, enqueue ${(enqueueMs / pairs).toFixed(1)} ms; every hold answered after ${holdsSeconds.toFixed(2)} s, every settle applied after ${seconds.toFixed(2)} s; CPU per pair: tally ${tally.child ? '(its own process)' : '(the bench process, client included)'} ${(tallyCpuMs / pairs).toFixed(2)} ms, PostgreSQL ${(pgCpuMs / pairs).toFixed(2)} ms`,
      notes: ok ? undefined : `refused ${refused}, consumed ${totals!.consumed}, still held ${totals!.held}, violations ${reconcile.violations.length}`,
    };
  } finally {
    await producer.close();
    await tally.stop();
    await world.drop();
  }
}

interface RunningTally {
  port: number;
  child: boolean;
  /** CPU used so far, ms: the child's, or this whole process's. */
  cpuMs(): number;
  stop(): Promise<void>;
}

/**
 * tally's API and worker roles: in this process (the default, as issue 5 measured it), or with `--procs N` (N ≥ 1)
 * in a process of their own like `tally start` — then the HTTP client here does not share tally's event loop.
 */
async function startTally(env: Record<string, string>, child: boolean): Promise<RunningTally> {
  if (!child) {
    const started = await startProcess(parseEnv(env), new Set(['api', 'worker']));
    const cpuMs = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    return { port: started.port!, child: false, cpuMs, stop: () => started.stop() };
  }
  const port = await freePort();
  const proc = spawn(process.execPath, [join(import.meta.dirname, '..', 'bin', 'tally.mjs'), 'start', '--role', 'api,worker'], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await until(async () => {
    if (proc.exitCode !== null) throw new Error(`tally exited with ${proc.exitCode} before it answered`);
    return fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
  }, 60_000);
  return {
    port,
    child: true,
    cpuMs: () => pidsCpu([proc.pid!]),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function until(check: () => Promise<boolean>, timeoutMs = 300_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting for the holds bench to drain');
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const opts = parseBenchOptions(process.argv.slice(2));
  const log = (m: string) => process.stderr.write(`bench: ${m}\n`);
  benchHolds({ opts, run: 1, createWorld: (label) => createBenchWorld(opts, label), log }).then(
    (ms) => {
      for (const m of ms) process.stdout.write(`${JSON.stringify(m)}\n`);
      process.exit(ms.some((m) => m.ok === false) ? 1 : 0);
    },
    (err) => {
      log(String(err?.stack ?? err));
      process.exit(1);
    },
  );
}
