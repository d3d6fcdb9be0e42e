import { createHmac } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { RedisClient as Redis } from '../redis.ts';
import type { Env } from '../config/env.ts';
import { applyConfig, readConfigFile } from '../config/store.ts';
import { createDb } from '../db/client.ts';
import { TallyProducer } from '../producers/index.ts';
import { createRedis } from '../redis.ts';
import { EXAMPLE_CONFIG } from './dev.ts';
import { demoWorkload, progressLine, starJourney, starUser, STAR_DEVICE, type DemoJob } from './demo-workload.ts';
import { runMigrations, startProcess, withSecrets, type Started } from './process.ts';
import { registerCommand, UsageError } from './registry.ts';

/**
 * `tally demo [--users N]`: the newcomer's first run. Migrates and seeds the example config, then sends a few
 * thousand simulated users' grants, charges, reward events and affinity events through the real queues to
 * whatever tally workers serve TALLY_PREFIX, waits for them with a progress bar (stderr), and prints a report
 * (stdout). With no worker running and TALLY_DEV=1 it starts its own worker role in this process.
 */
registerCommand('demo', async (args, rawEnv) => {
  const { values } = parseArgs({ args, options: { users: { type: 'string', default: '2000' }, 'timeout-s': { type: 'string', default: '600' } } });
  const users = Number(values.users);
  if (!Number.isInteger(users) || users < 1 || users > 100_000) throw new UsageError('tally demo [--users 1..100000]');
  const deadline = Date.now() + Number(values['timeout-s']) * 1000;
  const say = (s: string) => process.stderr.write(`${s}\n`);

  const migrated = await runMigrations(rawEnv);
  const sql = createDb(rawEnv.DATABASE_URL, { max: 2 });
  const redis = createRedis(rawEnv.REDIS_URL);
  const producer = new TallyProducer({ redis, prefix: rawEnv.TALLY_PREFIX });
  let own: Started | undefined;
  try {
    const config = await applyConfig(sql, await readConfigFile(EXAMPLE_CONFIG));
    say(`demo: database ready (${migrated.applied.length} migrations applied now), example config at version ${config.version}`);
    // Say it loudly when the demo replaced another config (the demo is for a dev instance; the contract's "seeds config").
    if (config.changed && config.version > 1) {
      say(`demo: note: the config in force (version ${config.version - 1}) was replaced by the example config; re-apply yours with \`tally config apply FILE\``);
    }

    let env: Env = rawEnv;
    if ((await producer.queue('grants').getWorkersCount()) === 0) {
      if (!rawEnv.TALLY_DEV) {
        throw new UsageError(`no tally worker serves prefix "${rawEnv.TALLY_PREFIX}": start one (tally start, npm run dev, pm2), or set TALLY_DEV=1 to let the demo run its own`);
      }
      env = withSecrets({ ...rawEnv, LOG_LEVEL: rawEnv.LOG_LEVEL === 'info' ? 'warn' : rawEnv.LOG_LEVEL }).env;
      own = await startProcess(env, new Set(['worker']));
      say('demo: no worker was running; started one in this process (TALLY_DEV=1)');
    }
    // Workers register their Redis connection name a moment after they start: give them that moment.
    let affinityServed = false;
    for (let i = 0; i < 20 && !affinityServed; i++) {
      affinityServed = (await producer.queue('affinity-events').getWorkersCount()) > 0;
      if (!affinityServed) await new Promise((r) => setTimeout(r, 150));
    }

    const run = Date.now().toString(36);
    const [grants = [], charges = [], affinity = []] = demoWorkload(run, users);
    const toWait = [...grants, ...charges, ...(affinityServed ? affinity : [])];
    const all = [...grants, ...charges, ...affinity];
    const started = Date.now();

    let sent = 0;
    for (let i = 0; i < all.length; i += 500) {
      const chunk = all.slice(i, i + 500);
      const byQueue = new Map<string, DemoJob[]>();
      for (const j of chunk) byQueue.set(j.queue, [...(byQueue.get(j.queue) ?? []), j]);
      for (const [queue, jobs] of byQueue) {
        await producer.queue(queue).addBulk(jobs.map((j) => ({ name: j.data.type, data: j.data, opts: { jobId: j.data.event_id } })));
      }
      sent += chunk.length;
      process.stderr.write(`\r${progressLine('enqueued', sent, all.length, started)}`);
    }
    process.stderr.write('\n');
    if (!affinityServed) say(`demo: no worker serves affinity-events (the affinity engine is not running): its ${affinity.length} events stay queued for it`);

    const applyStarted = Date.now();
    const finished = await waitForJobs(redis, rawEnv.TALLY_PREFIX, toWait, deadline, (done) =>
      process.stderr.write(`\r${progressLine('applied', done, toWait.length, applyStarted)}`),
    );
    process.stderr.write('\n');
    const applySeconds = (Date.now() - started) / 1000;

    const star = affinityServed ? await levelUp(producer, run) : undefined;
    const wsToken = env.TALLY_WS_SECRET ? streamToken(env.TALLY_WS_SECRET, star?.user ?? `demo-${run}-u0`) : undefined;
    await report({ sql, env, run, users, sent: all.length, finished, waited: toWait.length, applySeconds, star, wsToken, own: own !== undefined });
    return finished === toWait.length ? 0 : 1;
  } finally {
    await own?.stop();
    await producer.close();
    await redis.quit().catch(() => redis.disconnect());
    await sql.end({ timeout: 5 });
  }
});

/** Polls the jobs' hashes: a job is done once it has `finishedOn` (completed or failed) or was removed. */
async function waitForJobs(redis: Redis, prefix: string, jobs: DemoJob[], deadline: number, onProgress: (done: number) => void): Promise<number> {
  let pending = jobs.map((j) => `${prefix}:${j.queue}:${j.data.event_id}`);
  for (;;) {
    const still: string[] = [];
    for (let i = 0; i < pending.length; i += 2000) {
      const keys = pending.slice(i, i + 2000);
      const pipe = redis.pipeline();
      for (const k of keys) pipe.hmget(k, 'finishedOn', 'timestamp');
      const replies = (await pipe.exec()) ?? [];
      keys.forEach((k, n) => {
        const [finishedOn, timestamp] = (replies[n]?.[1] ?? [null, null]) as (string | null)[];
        if (!finishedOn && timestamp) still.push(k);
      });
    }
    pending = still;
    onProgress(jobs.length - pending.length);
    if (pending.length === 0 || Date.now() > deadline) return jobs.length - pending.length;
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface StarResult {
  user: string;
  results: Record<string, unknown>[];
}

async function levelUp(producer: TallyProducer, run: string): Promise<StarResult | undefined> {
  const results: Record<string, unknown>[] = [];
  for (const j of starJourney(run)) {
    const job = await producer.queue(j.queue).add(j.data.type, j.data, { jobId: j.data.event_id });
    try {
      results.push((await producer.result(j.queue, job, 30_000)) as Record<string, unknown>);
    } catch (err) {
      process.stderr.write(`demo: the level-up event failed: ${(err as Error).message}\n`);
      return { user: starUser(run), results };
    }
  }
  return { user: starUser(run), results };
}

/** A WebSocket client token (CONTRACT §5) for one user, valid for an hour. */
function streamToken(secret: string, userId: string): string {
  const body = Buffer.from(JSON.stringify({ user_id: userId, exp: Math.floor(Date.now() / 1000) + 3600 })).toString('base64url');
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

async function report(r: {
  sql: ReturnType<typeof createDb>;
  env: Env;
  run: string;
  users: number;
  sent: number;
  finished: number;
  waited: number;
  applySeconds: number;
  star: StarResult | undefined;
  wsToken: string | undefined;
  own: boolean;
}): Promise<void> {
  const like = `demo-${r.run}-%`;
  const outcomes = await r.sql<{ queue: string; outcome: string; n: number }[]>`
    SELECT queue, outcome, count(*)::int AS n FROM processed_events WHERE event_id LIKE ${like} GROUP BY 1, 2 ORDER BY 1, 3 DESC`;
  const dead = await r.sql<{ reason_code: string; n: number }[]>`
    SELECT reason_code, count(*)::int AS n FROM dead_letters WHERE event_id LIKE ${like} GROUP BY 1`;
  const balances = await r.sql<{ asset: string; accounts: number; balance: bigint; debt: bigint; overdrawn: number }[]>`
    SELECT asset, count(*)::int AS accounts, sum(balance)::bigint AS balance, sum(debt)::bigint AS debt, count(*) FILTER (WHERE debt > 0)::int AS overdrawn
    FROM accounts WHERE user_id LIKE ${like} GROUP BY asset ORDER BY asset`;
  const fmt = (n: number | bigint) => n.toLocaleString('en-US');
  const base = `http://127.0.0.1:${r.env.PORT}`;
  const lines = [
    '',
    `tally demo ${r.run}: ${fmt(r.users)} users, ${fmt(r.sent)} events sent, ${fmt(r.finished)}/${fmt(r.waited)} finished in ${r.applySeconds.toFixed(1)} s (${fmt(Math.round(r.finished / Math.max(r.applySeconds, 0.001)))} events/s end to end)`,
    '',
    'outcomes',
    ...outcomes.map((o) => `  ${o.queue.padEnd(16)} ${o.outcome.padEnd(24)} ${fmt(o.n).padStart(8)}`),
    ...dead.map((d) => `  dead letters     ${d.reason_code.padEnd(24)} ${fmt(d.n).padStart(8)}`),
    '',
    'balances',
    ...balances.map((b) => `  ${b.asset.padEnd(8)} ${fmt(b.accounts)} accounts, total ${fmt(b.balance)}, ${fmt(b.overdrawn)} overdrawn (debt ${fmt(b.debt)})`),
    '',
  ];
  if (r.star) {
    const last = r.star.results.at(-1) as { level_before?: number; level_after?: number; after?: number; rewards?: unknown[] } | undefined;
    const [bal] = await r.sql<{ balance: bigint }[]>`SELECT balance FROM accounts WHERE user_id = ${r.star.user} AND asset = 'points'`;
    lines.push(
      'level-up',
      last && last.level_after !== undefined && last.level_after > (last.level_before ?? 0)
        ? `  ${r.star.user} / ${STAR_DEVICE}: affinity ${last.after}, level ${last.level_before} → ${last.level_after}, rewards ${JSON.stringify(last.rewards ?? [])}; points balance now ${fmt(bal?.balance ?? 0n)}`
        : `  ${r.star.user}: no level-up seen (last result ${JSON.stringify(last ?? null)})`,
      '',
    );
  }
  lines.push(
    r.own ? 'where to look (the demo ran its own worker; start `npm run dev` to browse these)' : 'where to look',
    `  Bull Board   ${base}/admin/queues   (user admin, password = TALLY_ADMIN_TOKEN)`,
    `  dashboard    ${base}/admin/dashboard`,
    `  metrics      ${base}/metrics`,
    `  reconcile    npx tally maintenance reconcile`,
  );
  if (r.wsToken) lines.push(`  WebSocket    ws://127.0.0.1:${r.env.PORT}/v1/stream?token=${r.wsToken}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
