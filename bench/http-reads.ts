// HTTP read latency on a bench world (bench/grown-books.ts runs it on the grown ledger): a real `tally start
// --role api` process, loaded by autocannon (its programmatic API) from this process, one route at a time:
// a balance, a transactions page (the default 50), a balance `?at=` an instant of the past year. Users are drawn
// at random among all accounts, so the cache holds what a year of users would make it hold.
// With `explain`, also EXPLAIN (ANALYZE, BUFFERS) of the very statements each route runs (captured from the
// real read functions), naming the index that carries each.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import postgres from 'postgres';
import { balanceAt } from '../src/ledger/history.ts';
import { readBalance, readTransactions } from '../src/ledger/read.ts';
import type { BenchOptions } from './options.ts';
import type { Measurement } from './workload.ts';
import type { BenchWorld } from './world.ts';

interface CannonResult {
  latency: { p50: number; p90: number; p99: number; average: number; max: number };
  requests: { average: number; total: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
type Cannon = (opts: Record<string, unknown>) => Promise<CannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Cannon;

const ROOT = join(import.meta.dirname, '..');
/** Goal of issue 13 item 4: every one of these reads under 5 ms at p99. */
const P99_GOAL_MS = 5;
const YEAR_MS = 365 * 86_400_000;

export interface ReadsSetup {
  /** Users `user-0` … `user-{accounts-1}` exist. */
  accounts: number;
  /** The end of the preloaded history: `?at=` instants are drawn from the year before it. */
  until: Date;
  explain: boolean;
}

export async function benchHttpReads(opts: BenchOptions, world: BenchWorld, setup: ReadsSetup, log: (m: string) => void): Promise<Measurement[]> {
  const user = () => `user-${Math.floor(Math.random() * setup.accounts)}`;
  const pastInstant = () => new Date(setup.until.getTime() - Math.random() * YEAR_MS).toISOString();
  const routes = [
    { name: 'balance', path: () => `/v1/users/${user()}/balances/points` },
    { name: 'transactions', path: () => `/v1/users/${user()}/transactions?asset=points` },
    { name: 'balance-at', path: () => `/v1/users/${user()}/balances/points?at=${encodeURIComponent(pastInstant())}` },
  ];
  const out: Measurement[] = [];
  if (setup.explain) await explainReads(world, user(), pastInstant(), log);

  const port = await freePort();
  const api = spawn(process.execPath, [join(ROOT, 'bin', 'tally.mjs'), 'start', '--role', 'api'], {
    env: { ...process.env, ...world.childEnv, PORT: String(port), TALLY_RATE_LIMIT_PER_MINUTE: '0' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitHealthy(base);
    const seconds = opts.quick ? 5 : 15;
    for (const r of routes) {
      const cannon = (duration: number, connections: number) =>
        autocannon({
          url: base,
          connections,
          duration,
          headers: { authorization: `Bearer ${world.childEnv.TALLY_API_TOKEN}` },
          requests: [{ method: 'GET', setupRequest: (req: Record<string, unknown>) => ({ ...req, path: r.path() }) }],
        });
      await cannon(2, 10); // warm: connections, JIT, the pool
      // Saturated (closed loop, 10 connections): the throughput; its latencies are mostly queueing in the one api
      // process. The p99 is a read's own latency: one connection, one request at a time, as fast as it answers.
      // (autocannon's rate limit sends each second's requests in a burst, which measures the burst, not the read.)
      const peak = await cannon(seconds, 10);
      const res = await cannon(seconds, 1);
      const ok = [peak, res].every((x) => x.non2xx === 0 && x.errors === 0 && x.timeouts === 0);
      const detail = `one at a time: ${Math.round(res.requests.average)} req/s, p50 ${res.latency.p50} ms, p90 ${res.latency.p90} ms, p99 ${res.latency.p99} ms, max ${res.latency.max} ms; saturated (10 connections): ${Math.round(peak.requests.average)} req/s, p50 ${peak.latency.p50} ms, p99 ${peak.latency.p99} ms`;
      log(`http-reads ${r.name}: ${detail}`);
      out.push({
        name: `http-${r.name}-p99`,
        rate: res.latency.p99,
        unit: `ms p99, one request at a time (goal < ${P99_GOAL_MS})`,
        count: res.requests.total,
        seconds,
        ok,
        detail,
        notes: ok ? undefined : `${peak.non2xx + res.non2xx} non-2xx, ${peak.errors + res.errors} errors, ${peak.timeouts + res.timeouts} timeouts`,
      });
      out.push({ name: `http-${r.name}-peak`, rate: peak.requests.average, unit: 'req/s (10 connections)' });
    }
    return out;
  } finally {
    await new Promise<void>((resolve) => {
      if (api.exitCode !== null || api.signalCode !== null) return resolve();
      api.once('exit', () => resolve());
      api.kill('SIGTERM');
    });
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function waitHealthy(base: string): Promise<void> {
  const until = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/healthz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error('http-reads: the api process did not become healthy in 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Runs the real read functions on a connection that records every statement, then EXPLAINs each recorded
 * statement with its parameters: the plans are of tally's own SQL, not of a copy that could drift.
 */
export async function explainReads(world: BenchWorld, userId: string, at: string, log: (m: string) => void): Promise<Record<string, string[]>> {
  let captured: { query: string; params: unknown[] }[] = [];
  let capturing = true;
  const db = postgres(world.url, {
    max: 1,
    types: { bigint: postgres.BigInt },
    onnotice: () => {},
    debug: (_conn: number, query: string, params: unknown[]) => {
      // postgres.js's own first-connection type lookup is not tally's.
      if (capturing && !/\bpg_type\b/.test(query)) captured.push({ query, params });
    },
  });
  const used: Record<string, string[]> = {};
  try {
    const reads: [string, () => Promise<unknown>][] = [
      ['balance', () => readBalance(db as never, userId, 'points')],
      ['transactions', () => readTransactions(db as never, userId, { asset: 'points', limit: 50 })],
      ['balance-at', () => balanceAt(db as never, userId, 'points', at)],
    ];
    for (const [name, read] of reads) {
      captured = [];
      capturing = true;
      await read();
      capturing = false;
      const statements = captured;
      used[name] = [];
      for (const s of statements) {
        const plan = (await db.unsafe(`EXPLAIN (ANALYZE, BUFFERS) ${s.query}`, s.params as never[])) as unknown as { 'QUERY PLAN': string }[];
        const text = plan.map((p) => p['QUERY PLAN']).join('\n');
        const indexes = [...text.matchAll(/(?:Index Scan(?: Backward)?|Index Only Scan(?: Backward)?|Bitmap Index Scan) (?:using|on) (\S+)(?: on (\S+))?/g)].map((m) => m[1]!);
        const seq = [...text.matchAll(/Seq Scan on (\S+)/g)].map((m) => `SEQ SCAN ${m[1]}`);
        used[name].push(...indexes, ...seq);
        log(`explain ${name}: ${s.query.replace(/\s+/g, ' ').slice(0, 160)}…\n${text}`);
      }
      log(`explain ${name}: carried by ${[...new Set(used[name])].join(', ') || 'no index'}`);
    }
    return used;
  } finally {
    await db.end({ timeout: 5 });
  }
}
