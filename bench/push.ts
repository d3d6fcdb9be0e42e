// Live-push benchmark (issue 4): 1,000 WebSocket clients connected, a burst of ledger changes through the real
// queues, delivery latency from commit (the outbox row's `ts`) to client receipt. A short smoke run: it shows
// the whole path holds up under a burst and what latency to expect, not a tuned capacity figure.
import '../src/modules.ts';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { startProcess } from '../src/cli/process.ts';
import { parseEnv } from '../src/config/env.ts';
import { signToken } from '../src/push/token.ts';
import type { Measurement, WorkloadContext } from './workload.ts';

export interface PushBenchResult {
  clients: number;
  messages: number;
  received: number;
  /** Commit (outbox row written) → client receipt, in ms. */
  p50: number;
  p99: number;
  max: number;
  /** First enqueue → last receipt, in seconds. */
  seconds: number;
  duplicates: number;
}

const CONNECT_PARALLEL = 100;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Runs one burst against a tally running in this process (all roles) in the given world. */
export async function runPushBurst(
  world: { childEnv: Record<string, string>; drop(): Promise<void> },
  { clients = 1_000, perClient = 2, timeoutMs = 120_000, log = (_: string) => {} } = {},
): Promise<PushBenchResult> {
  const secret = `bench-ws-${randomBytes(12).toString('base64url')}`;
  const env = parseEnv({ ...world.childEnv, TALLY_WS_SECRET: secret, LOG_LEVEL: 'warn' });
  const started = await startProcess(env, new Set(['api', 'worker', 'scheduler']));
  const sockets: WebSocket[] = [];
  try {
    const base = `ws://127.0.0.1:${started.port}/v1/stream?token=`;
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const latencies: number[] = [];
    const ids = new Set<string>();
    let duplicates = 0;
    let lastReceipt = 0;
    const expected = clients * perClient;
    let resolveAll!: () => void;
    const all = new Promise<void>((r) => (resolveAll = r));

    for (let i = 0; i < clients; i += CONNECT_PARALLEL) {
      await Promise.all(
        Array.from({ length: Math.min(CONNECT_PARALLEL, clients - i) }, (_, k) => {
          const ws = new WebSocket(base + signToken(secret, { userId: `pb-${i + k}`, exp }));
          sockets.push(ws);
          ws.on('message', (raw) => {
            const now = performance.timeOrigin + performance.now();
            const msg = JSON.parse(raw.toString()) as { id: string; ts: string };
            if (ids.has(msg.id)) duplicates++;
            else {
              ids.add(msg.id);
              latencies.push(now - Date.parse(msg.ts));
              lastReceipt = now;
              if (ids.size === expected) resolveAll();
            }
          });
          return new Promise<void>((resolve, reject) => {
            ws.once('open', () => resolve());
            ws.once('error', reject);
          });
        }),
      );
    }
    log(`push: ${clients} clients connected, burst of ${expected} ledger changes`);

    const tag = randomBytes(4).toString('hex');
    const t0 = performance.timeOrigin + performance.now();
    const users = Array.from({ length: clients }, (_, i) => `pb-${i}`);
    await started.ctx.producer.grantBulk(users.map((u) => ({ event_id: `pbg-${tag}-${u}`, user_id: u, asset: 'points', amount: 100, source: 'bench' })), { batch: false });
    for (let k = 1; k < perClient; k++) {
      await started.ctx.producer.chargeBulk(
        users.map((u) => ({ event_id: `pbc-${tag}-${k}-${u}`, user_id: u, asset: 'points', source_type: 'script', source_id: 'bench', policy: 'postpaid' }) as never),
        { batch: false }, // one job per event, as before batch jobs: the burst measures push, not batching
      );
    }
    const timer = setTimeout(resolveAll, timeoutMs);
    await all;
    clearTimeout(timer);
    latencies.sort((a, b) => a - b);
    return {
      clients,
      messages: expected,
      received: ids.size,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies[latencies.length - 1] ?? NaN,
      seconds: (lastReceipt - t0) / 1000,
      duplicates,
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    await started.stop();
  }
}

/** The `npm run bench` workload (`--only push`). */
export async function benchPush(ctx: WorkloadContext): Promise<Measurement[]> {
  const world = await ctx.createWorld('push');
  try {
    const r = await runPushBurst(world, { log: ctx.log });
    const ok = r.received === r.messages;
    const notes = `${r.clients} clients, ${r.received}/${r.messages} delivered, commit→receipt p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms, ${r.duplicates} redelivered`;
    ctx.log(`push: ${notes}`);
    return [
      { name: 'push-burst', rate: r.received / r.seconds, unit: 'msgs/s', count: r.received, seconds: r.seconds, ok, notes },
      { name: 'push-latency-p50', rate: r.p50, unit: 'ms commit→receipt', ok },
      { name: 'push-latency-p99', rate: r.p99, unit: 'ms commit→receipt', ok },
    ];
  } finally {
    await world.drop();
  }
}
