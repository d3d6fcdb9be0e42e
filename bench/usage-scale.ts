// How fast is GET /v1/users/:id/usage on a large ledger? Loads N synthetic ledger rows (default 10M) into a
// scratch database and times the dashboard query for a typical and a heavy user, with the partial index
// the hourly rollup (migration 006, what GET …/usage reads) and, for comparison, from ledger_entries alone
// through its partial index ledger_entries_usage (migration 004).
//   node --import tsx bench/usage-scale.ts [--rows 10000000] [--users 10000]
import { parseArgs } from 'node:util';
import { createDb } from '../src/db/client.ts';
import { ensureDatabase, migrate } from '../src/db/migrate.ts';
import { readUsage } from '../src/money/usage.ts';
import { dropDatabase } from './world.ts';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '10000000' }, users: { type: 'string', default: '10000' }, keep: { type: 'boolean', default: false } } });
const rows = Number(values.rows);
const users = Number(values.users);
const pgBase = process.env.PG_BASE ?? 'postgres://127.0.0.1:5432';
const dbName = `tally_usage_scale_${Date.now().toString(36)}`;
const log = (m: string) => process.stderr.write(`usage-scale: ${m}\n`);

async function main() {
  await ensureDatabase(`${pgBase}/${dbName}`);
  const sql = createDb(`${pgBase}/${dbName}`, { max: 2 });
  try {
    await migrate(sql);
    await sql`INSERT INTO accounts (user_id, asset) SELECT 'u' || g, 'credits' FROM generate_series(0, ${users}::int) g`;
    // Loaded without secondary indexes, then indexed: how a restore would do it, and far faster.
    await sql`DROP INDEX ledger_entries_usage, ledger_entries_user, ledger_entries_user_asset, ledger_entries_event`;
    const chunk = 1_000_000;
    const t0 = performance.now();
    for (let start = 0; start < rows; start += chunk) {
      const n = Math.min(chunk, rows - start);
      // User u0 is heavy (1% of all rows, all charges); the rest share the remainder. Spread over 60 days; 80% charges.
      await sql`
        INSERT INTO ledger_entries (account_id, user_id, asset, kind, amount, balance_before, balance_after, source_type, usage, occurred_at)
        SELECT a.account_id, a.user_id, 'credits', k.kind, k.amount, 0, k.amount, k.st,
          CASE WHEN k.kind = 'consume' THEN jsonb_build_object('model', 'gpt-4o-mini', 'input_tokens', 100, 'output_tokens', 50) END,
          CASE WHEN k.kind = 'consume' THEN now() - (g % 86400) * interval '60 seconds' END
        FROM generate_series(${start}::bigint, ${start + n - 1}::bigint) g
        JOIN accounts a ON a.user_id = 'u' || CASE WHEN g % 100 = 1 THEN 0 ELSE 1 + (g * 7919) % ${users}::int END
        CROSS JOIN LATERAL (SELECT CASE WHEN g % 5 = 0 THEN 'grant' ELSE 'consume' END AS kind,
                                   CASE WHEN g % 5 = 0 THEN 10::bigint ELSE -3::bigint END AS amount,
                                   CASE WHEN g % 5 = 0 THEN 'recharge' WHEN g % 3 = 0 THEN 'tts' ELSE 'llm' END AS st) k`;
      log(`${start + n} rows (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
    const ti = performance.now();
    await sql`CREATE INDEX ledger_entries_usage ON ledger_entries (user_id, occurred_at) INCLUDE (asset, kind, amount, source_type) WHERE kind IN ('consume', 'refund')`;
    log(`usage index built in ${((performance.now() - ti) / 1000).toFixed(0)} s`);
    const tr = performance.now();
    // What migration 006 does for an existing ledger (afterwards every ledger transaction keeps it current).
    await sql`
      INSERT INTO usage_hourly (user_id, asset, hour, source_type, model, amount, count, input_tokens, output_tokens)
      SELECT user_id, asset, date_trunc('hour', occurred_at, 'UTC'), coalesce(source_type, 'unknown'), coalesce(usage->>'model', ''),
        -sum(amount), count(*) FILTER (WHERE kind = 'consume'),
        coalesce(sum((usage->>'input_tokens')::bigint) FILTER (WHERE kind = 'consume'), 0),
        coalesce(sum((usage->>'output_tokens')::bigint) FILTER (WHERE kind = 'consume'), 0)
      FROM ledger_entries WHERE kind IN ('consume', 'refund') AND occurred_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5`;
    log(`rollup backfilled in ${((performance.now() - tr) / 1000).toFixed(0)} s`);
    await sql`VACUUM ANALYZE ledger_entries`;
    await sql`VACUUM ANALYZE usage_hourly`;
    const measure = async (label: string, user: string, window: '24h' | '7d' | '30d' | 'all', fn: () => Promise<number>) => {
      await fn(); // warm
      const t = performance.now();
      const reps = 5;
      let count = 0;
      for (let i = 0; i < reps; i++) count = await fn();
      const ms = (performance.now() - t) / reps;
      log(`${label} ${user} window=${window}: ${ms.toFixed(1)} ms (count ${count})`);
      return { label, user, window, ms: Math.round(ms * 10) / 10, count };
    };
    const windowMs = { '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000, all: null } as const;
    // The index-only alternative: every row of the window from ledger_entries via ledger_entries_usage.
    const ledgerOnly = (user: string, window: keyof typeof windowMs) => async () => {
      const ms = windowMs[window];
      const since = ms === null ? null : new Date(Date.now() - ms);
      const rows = await sql<{ count: bigint }[]>`
        SELECT source_type, usage->>'model' AS model, -sum(amount) AS amount, count(*) FILTER (WHERE kind = 'consume') AS count
        FROM ledger_entries WHERE user_id = ${user} AND kind IN ('consume', 'refund') ${since === null ? sql`` : sql`AND occurred_at >= ${since}`}
        GROUP BY 1, 2`;
      return rows.reduce((s, r) => s + Number(r.count), 0);
    };
    const rollup = (user: string, window: keyof typeof windowMs) => async () => (await readUsage(sql, user, { window })).count;
    const results = [];
    for (const [user, windows] of [['u42', ['24h', '30d', 'all']], ['u0', ['24h', '30d', 'all']]] as const) {
      for (const w of windows) {
        results.push(await measure('index only', user, w, ledgerOnly(user, w)));
        results.push(await measure('rollup + edge', user, w, rollup(user, w)));
      }
    }
    process.stdout.write(`${JSON.stringify({ rows, users, results }, null, 1)}\n`);
  } finally {
    await sql.end({ timeout: 5 });
    if (!values.keep) await dropDatabase(pgBase, dbName);
  }
}

main().catch((err) => {
  log(String(err?.stack ?? err));
  process.exit(1);
});
