// A ledger that has lived for a year, written with SQL (generate_series), not through the workers: what
// bench/grown-books.ts measures tally on. Every row obeys the ledger's invariants, so reconcile passes and the
// reads (balance, transactions, `?at=`) answer what tally would have answered had it written the rows itself.
import type { Sql } from '../src/db/client.ts';

export interface GrownSize {
  /** Ledger entries (≥ accounts: every account has at least its first grant). */
  entries: number;
  accounts: number;
}

export interface GrownLedger extends GrownSize {
  /** When the history ends: every preloaded entry is dated before it, the last day's at a steady rate. */
  until: Date;
  seconds: number;
}

/**
 * The history, account by account (account `a` = user `user-{a}`, asset `points`, entries k = 0, 1, …):
 * - entry g of the whole ledger is the k-th of account g mod A (k = g div A), so every account's entries
 *   interleave with the others' over 365 days, oldest first, and entry ids grow with time as tally's do;
 * - k mod 5 = 0 is a grant (a batch of 20 points, expiring 400 days later, so none has lapsed yet); the four
 *   entries after it are `script` charges of 5, burned from that batch. A batch is therefore used up before the
 *   next one exists, which is what FIFO burn order would have done. The account's last grant is 20 + 5·(a mod 20):
 *   what it keeps is the balance, 0–115 points;
 * - each entry has its decision (processed_events, `grants` or `charges`) with an ApplyResult like tally's, each
 *   charge one allocation, the hourly usage rollup matches; the last 24 h of entries have their relayed
 *   `balance_changed` outbox rows (what the outbox holds at the default retention), seq in entry order;
 * - every user has one device with one `chat` affinity event (log, daily counters, rule state, decision).
 * The bench users `user-0` … are among these accounts, so the timed charges land on accounts with a history.
 */
export async function growLedger(sql: Sql, size: GrownSize, log: (m: string) => void): Promise<GrownLedger> {
  const { entries: n, accounts: a } = size;
  if (a < 1 || n < a) throw new Error(`grown books: need entries (${n}) ≥ accounts (${a}) ≥ 1`);
  const t0 = performance.now();
  const db = await sql.reserve(); // one session: its settings and temp table hold for the whole load
  try {
    const [first] = await db<{ now: Date }[]>`SELECT date_trunc('second', now()) AS now`;
    const until = first!.now;
    await db`SET synchronous_commit = off`;
    await db`SET maintenance_work_mem = '512MB'`;
    const rebuild = await dropIndexes(db, BIG_TABLES);
    log(`grown books: secondary indexes and keys of ${BIG_TABLES.join(', ')} dropped for the load (${rebuild.length} to rebuild)`);

    // Accounts in closed form (see above): c entries = g groups of a grant and up to four charges.
    await db`
      INSERT INTO accounts (account_id, user_id, asset, balance, total_granted, total_consumed, version, updated_at)
      SELECT i + 1, 'user-' || i, 'points', 20 + 5 * (i % 20) - 5 * (c - 1 - 5 * ((c - 1) / 5)),
        20 * ((c + 4) / 5) + 5 * (i % 20), 5 * (c - (c + 4) / 5), c, ${until}
      FROM generate_series(0, ${a - 1}::bigint) i,
        LATERAL (SELECT ${Math.floor(n / a)}::bigint + CASE WHEN i < ${n % a}::bigint THEN 1 ELSE 0 END AS c) x`;
    log(`grown books: ${a} accounts`);

    const chunk = 1_000_000;
    for (let start = 0; start < n; start += chunk) {
      const end = Math.min(n, start + chunk) - 1;
      await loadEntries(db, { n, a, start, end, until });
      log(`grown books: ${end + 1} of ${n} entries (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }

    await db`
      INSERT INTO usage_hourly (user_id, asset, hour, source_type, model, amount, count, input_tokens, output_tokens)
      SELECT user_id, asset, date_trunc('hour', occurred_at, 'UTC'), coalesce(source_type, 'unknown'), coalesce(usage->>'model', ''),
        -sum(amount), count(*) FILTER (WHERE kind = 'consume'), 0, 0
      FROM ledger_entries WHERE kind IN ('consume', 'refund') AND occurred_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5`;
    log(`grown books: usage rollup (${((performance.now() - t0) / 1000).toFixed(0)} s)`);

    await loadOutbox(db, until);
    await loadAffinity(db, a, until);
    log(`grown books: outbox and affinity rows (${((performance.now() - t0) / 1000).toFixed(0)} s)`);

    for (const stmt of rebuild) await db.unsafe(stmt);
    log(`grown books: indexes and keys rebuilt (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    await db`SELECT setval('accounts_account_id_seq', ${a}::bigint)`;
    await db`SELECT setval('ledger_entries_entry_id_seq', ${n}::bigint)`;
    await db`SELECT setval('batches_batch_id_seq', (SELECT max(batch_id) FROM batches))`;
    await db`SELECT setval('affinity_log_log_id_seq', (SELECT max(log_id) FROM affinity_log))`;
    // What autovacuum would have done over the year: statistics, and the visibility map index-only scans need.
    for (const t of [...BIG_TABLES, 'usage_hourly', 'outbox', 'affinity_log', 'affinity_devices', 'affinity_daily', 'affinity_rule_state']) {
      await db.unsafe(`VACUUM (ANALYZE) ${t}`);
    }
    const seconds = (performance.now() - t0) / 1000;
    log(`grown books: ${n} entries / ${a} accounts ready in ${seconds.toFixed(0)} s`);
    return { entries: n, accounts: a, until, seconds };
  } finally {
    db.release();
  }
}

/** The tables loaded row by row in bulk: their indexes are built once afterwards, which is far faster. */
const BIG_TABLES = ['accounts', 'ledger_entries', 'batches', 'ledger_allocations', 'processed_events'];

/**
 * Drops every index and key of `tables` (foreign keys pointing at them too) and returns the statements that put
 * them back exactly as the migrations made them — read from the catalogue, so an index a later migration adds
 * is rebuilt too.
 */
async function dropIndexes(db: Sql, tables: string[]): Promise<string[]> {
  const fks = await db<{ tbl: string; name: string; def: string }[]>`
    SELECT conrelid::regclass::text AS tbl, conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
    WHERE contype = 'f' AND (conrelid::regclass::text = ANY(${tables}::text[]) OR confrelid::regclass::text = ANY(${tables}::text[]))`;
  const keys = await db<{ tbl: string; name: string; def: string }[]>`
    SELECT conrelid::regclass::text AS tbl, conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
    WHERE contype IN ('p', 'u') AND conrelid::regclass::text = ANY(${tables}::text[])`;
  const indexes = await db<{ name: string; def: string }[]>`
    SELECT indexname AS name, indexdef AS def FROM pg_indexes
    WHERE schemaname = current_schema() AND tablename = ANY(${tables}::text[])
      AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u'))`;
  for (const f of fks) await db.unsafe(`ALTER TABLE ${f.tbl} DROP CONSTRAINT ${f.name}`);
  for (const k of keys) await db.unsafe(`ALTER TABLE ${k.tbl} DROP CONSTRAINT ${k.name}`);
  for (const i of indexes) await db.unsafe(`DROP INDEX ${i.name}`);
  return [
    ...keys.map((k) => `ALTER TABLE ${k.tbl} ADD CONSTRAINT ${k.name} ${k.def}`),
    ...indexes.map((i) => i.def),
    ...fks.map((f) => `ALTER TABLE ${f.tbl} ADD CONSTRAINT ${f.name} ${f.def}`),
  ];
}

/** Entries g = start … end with their batches, allocations and decisions (one pass over a temp table). */
async function loadEntries(db: Sql, p: { n: number; a: number; start: number; end: number; until: Date }): Promise<void> {
  await db`DROP TABLE IF EXISTS grown_chunk`;
  // Per entry: account i, position k, group j (its grant is entry k = 5j), the group's grant size gs, the date.
  await db`
    CREATE TEMP TABLE grown_chunk AS
    SELECT g, i, k, k % 5 AS r, gs, 'gb-' || g AS event_id,
      ${p.until}::timestamptz - interval '365 days' * (1 - g::float8 / ${p.n}::float8) - interval '1 minute' AS at,
      (k / 5) * ${p.a}::bigint + i + 1 AS batch_id
    FROM generate_series(${p.start}::bigint, ${p.end}::bigint) g,
      LATERAL (SELECT g % ${p.a}::bigint AS i, g / ${p.a}::bigint AS k) ik,
      LATERAL (SELECT ${Math.floor(p.n / p.a)}::bigint + CASE WHEN i < ${p.n % p.a}::bigint THEN 1 ELSE 0 END AS c) cnt,
      LATERAL (SELECT 20 + CASE WHEN k / 5 = (c - 1) / 5 THEN 5 * (i % 20) ELSE 0 END AS gs) grp`;
  await db`
    INSERT INTO ledger_entries (entry_id, account_id, user_id, asset, kind, amount, balance_before, balance_after,
      event_id, source_type, source_id, occurred_at, created_at)
    SELECT g + 1, i + 1, 'user-' || i, 'points',
      CASE WHEN r = 0 THEN 'grant' ELSE 'consume' END,
      CASE WHEN r = 0 THEN gs ELSE -5 END,
      CASE WHEN r = 0 THEN 0 ELSE gs - 5 * (r - 1) END,
      CASE WHEN r = 0 THEN gs ELSE gs - 5 * r END,
      event_id, CASE WHEN r = 0 THEN 'recharge' ELSE 'script' END, CASE WHEN r = 0 THEN NULL ELSE 's-' || (g % 97) END, at, at
    FROM grown_chunk`;
  // A group's charges burned its batch: what is left is the grant less the charges that exist.
  await db`
    INSERT INTO batches (batch_id, account_id, amount, remaining, expires_at, source, grant_entry_id, created_at)
    SELECT batch_id, i + 1, gs,
      gs - 5 * (least(4, (${Math.floor(p.n / p.a)}::bigint + CASE WHEN i < ${p.n % p.a}::bigint THEN 1 ELSE 0 END) - 1 - k)),
      at + interval '400 days', 'recharge', g + 1, at
    FROM grown_chunk WHERE r = 0`;
  await db`INSERT INTO ledger_allocations (entry_id, batch_id, amount) SELECT g + 1, batch_id, 5 FROM grown_chunk WHERE r > 0`;
  await db`
    INSERT INTO processed_events (queue, event_id, payload_hash, outcome, result, created_at)
    SELECT CASE WHEN r = 0 THEN 'grants' ELSE 'charges' END, event_id, encode(sha256(convert_to(event_id, 'UTF8')), 'hex'), 'applied',
      CASE WHEN r = 0
        THEN jsonb_build_object('outcome', 'applied', 'transaction_id', (g + 1)::text, 'amount', gs, 'balance_after', gs)
        ELSE jsonb_build_object('outcome', 'applied', 'transaction_id', (g + 1)::text, 'amount', 5,
          'balance_before', gs - 5 * (r - 1), 'balance_after', gs - 5 * r) END,
      at
    FROM grown_chunk`;
  await db`DROP TABLE grown_chunk`;
}

/** The last 24 h of entries announced their balance; the relay has sequenced and published them all. */
async function loadOutbox(db: Sql, until: Date): Promise<void> {
  await db`
    INSERT INTO outbox (user_id, type, data, created_at, relayed_at, seq)
    SELECT user_id, 'balance_changed', jsonb_build_object('asset', asset, 'balance', balance_after, 'transaction_id', entry_id::text),
      created_at, created_at + interval '50 milliseconds',
      (SELECT seq FROM outbox_feed WHERE mark = 'sequenced') + row_number() OVER (ORDER BY entry_id)
    FROM ledger_entries WHERE created_at > ${until}::timestamptz - interval '24 hours' ORDER BY entry_id`;
  await db`
    UPDATE outbox_feed f SET seq = CASE WHEN f.mark = 'pruned' THEN coalesce(m.lo - 1, f.seq) ELSE coalesce(m.hi, f.seq) END
    FROM (SELECT min(seq) AS lo, max(seq) AS hi FROM outbox) m`;
}

/** One device per user with one `chat` event (+2), its daily counters and rule state, and its decision. */
async function loadAffinity(db: Sql, a: number, until: Date): Promise<void> {
  const at = db`${until}::timestamptz - interval '365 days' * (1 - i::float8 / ${a}::float8) - interval '2 minutes'`;
  await db`
    INSERT INTO affinity_devices (user_id, device_id, value, level, last_active_at, version, updated_at)
    SELECT 'user-' || i, 'd-0', 2, 1, ${at}, 1, ${at} FROM generate_series(0, ${a - 1}::bigint) i`;
  await db`
    INSERT INTO affinity_log (user_id, device_id, kind, event_id, rule_key, source, outcome, change, before, after,
      level_before, level_after, day, occurred_at, created_at)
    SELECT 'user-' || i, 'd-0', 'event', 'ga-' || i, 'chat', 'app', 'applied', 2, 0, 2, 1, 1, (${at})::date, ${at}, ${at}
    FROM generate_series(0, ${a - 1}::bigint) i`;
  await db`
    INSERT INTO affinity_daily (user_id, device_id, day, scope, positive_sum)
    SELECT user_id, device_id, day, s.scope, 2 FROM affinity_log, (VALUES ('chat'), ('*')) AS s(scope)`;
  await db`
    INSERT INTO affinity_rule_state (user_id, device_id, rule_key, last_applied_at)
    SELECT user_id, device_id, rule_key, occurred_at FROM affinity_log`;
  await db`
    INSERT INTO processed_events (queue, event_id, payload_hash, outcome, result, created_at)
    SELECT 'affinity-events', event_id, encode(sha256(convert_to(event_id, 'UTF8')), 'hex'), 'applied',
      jsonb_build_object('outcome', 'applied', 'change', 2, 'before', 0, 'after', 2, 'level_before', 1, 'level_after', 1, 'rewards', '[]'::jsonb),
      created_at
    FROM affinity_log`;
}
