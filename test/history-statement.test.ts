import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_TOKEN, createWorld, type TestWorld } from './helpers/env.ts';
import { spawnTally, waitFor } from './helpers/tally.ts';

/**
 * A statement of 200,000 entries from a real `tally start --role api` process: streamed with flat memory (the
 * process's RSS is sampled from /proc while it streams), and an aborted download releases its cursor.
 */
const ENTRIES = 200_000;
let world: TestWorld;
let child: ChildProcess;
let base: string;

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  await world.clock.set(new Date('2030-01-01T00:00:00Z')); // the generated history lies in 2029
  const [acct] = await world.sql<{ account_id: bigint }[]>`
    INSERT INTO accounts (user_id, asset, balance, total_granted) VALUES ('heavy', 'credits', ${ENTRIES}, ${ENTRIES}) RETURNING account_id`;
  const [other] = await world.sql<{ account_id: bigint }[]>`
    INSERT INTO accounts (user_id, asset, balance, total_granted) VALUES ('heavy', 'points', 2000, 2000) RETURNING account_id`;
  // One chained entry per 10 ms, descriptions that a spreadsheet would take for formulas now and then; the user's
  // other asset interleaved (the statement skips it).
  await world.sql`
    INSERT INTO ledger_entries (account_id, user_id, asset, kind, amount, balance_before, balance_after, event_id, source_type, description, created_at)
    SELECT ${String(acct!.account_id)}::bigint, 'heavy', 'credits', 'grant', 1, g - 1, g, 'e-' || g, 'gift',
      CASE WHEN g % 1000 = 0 THEN '=HYPERLINK("http://x","y"), said "a"' ELSE 'row ' || g END,
      timestamptz '2029-01-01T00:00:00Z' + g * interval '10 ms'
    FROM generate_series(1, ${ENTRIES}::int) g`;
  await world.sql`
    INSERT INTO ledger_entries (account_id, user_id, asset, kind, amount, balance_before, balance_after, source_type, created_at)
    SELECT ${String(other!.account_id)}::bigint, 'heavy', 'points', 'grant', 1, g - 1, g, 'gift', timestamptz '2029-01-01T00:00:00Z' + g * interval '1 s'
    FROM generate_series(1, 2000) g`;
  await world.sql`ANALYZE ledger_entries`;
  // A heap cap well below what 200,000 rows held at once would need (the process idles at ~50 MB of heap): a
  // statement that buffered would die here; a streamed one does not notice.
  child = spawnTally(world, ['start', '--role', 'api'], { LOG_LEVEL: 'info', NODE_OPTIONS: '--max-old-space-size=96' });
  let log = '';
  child.stderr!.on('data', (c: Buffer) => {
    log += c.toString();
    if (process.env.TEST_SHOW_API_LOG) process.stderr.write(c);
  });
  const port = await waitFor('the api process', async () => {
    for (const line of log.split('\n')) if (line.includes('"tally started"')) return (JSON.parse(line) as { port?: number }).port;
    if (child.exitCode !== null) throw new Error(`api exited: ${log}`);
    return undefined;
  }, 60_000, 100);
  base = `http://127.0.0.1:${port}`;
}, 180_000);
afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await world?.drop();
});

const statementUrl = (format: string, extra = '') => `${base}/v1/users/heavy/statement?asset=credits&format=${format}${extra}`;
const auth = { authorization: `Bearer ${API_TOKEN}` };

async function cursorsOpen(): Promise<number> {
  const [row] = await world.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%FROM ledger_entries%entry_id >%' AND state <> 'idle'`;
  return row!.n;
}

describe('GET /v1/users/:user_id/statement at 200,000 entries', () => {
  it('streams every entry (ndjson) in chain order with flat server memory; measured', async () => {
    const pid = child.pid!;
    for (let i = 0; i < 2; i++) await fetch(`${base}/healthz`); // warm
    const before = await rssKb(pid);
    let peak = before;
    const sampler = setInterval(() => void rssKb(pid).then((k) => (peak = Math.max(peak, k))).catch(() => {}), 25);
    const t0 = performance.now();
    const res = await fetch(statementUrl('ndjson'), { headers: auth });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    const decoder = new TextDecoder();
    let rest = '';
    let lines = 0;
    let last = 0;
    let opening: any;
    let closing: any;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      rest += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf('\n')) >= 0) {
        const row = JSON.parse(rest.slice(0, nl));
        rest = rest.slice(nl + 1);
        lines++;
        if (row.type === 'opening') opening = row;
        else if (row.type === 'closing') closing = row;
        else {
          expect(row.balance_before).toBe(last);
          last = row.balance_after;
        }
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    await new Promise((r) => setTimeout(r, 500));
    const after = await rssKb(pid);
    expect(lines).toBe(ENTRIES + 2);
    expect(opening).toMatchObject({ recorded_balance: 0, balance: 0 });
    expect(closing).toMatchObject({ entries: ENTRIES, recorded_balance: ENTRIES, balance: ENTRIES });
    const report = { entries: ENTRIES, seconds: Number(seconds.toFixed(2)), entries_per_s: Math.round(ENTRIES / seconds), rss_mb: { before: before >> 10, peak: peak >> 10, after: after >> 10 } };
    const metrics = await (await fetch(`${base}/metrics`)).text();
    console.log(`statement ndjson: ${JSON.stringify(report)} ${metrics.split('\n').filter((l) => /heap_size_(used|total)_bytes /.test(l)).join(' ')}`);
    // ~50 MB of NDJSON went out under a 96 MB heap cap; RSS peaks with uncollected garbage, then returns.
    expect(child.exitCode).toBeNull();
    expect(peak - before).toBeLessThan(120 * 1024);
    expect(after - before).toBeLessThan(40 * 1024);
  }, 180_000);

  it('csv: a header, opening, entries and closing rows; formula-like text neutralised, quotes doubled; numbers stay numbers', async () => {
    const res = await fetch(statementUrl('csv', `&from=${encodeURIComponent('2029-01-01T00:00:09.990Z')}&to=${encodeURIComponent('2029-01-01T00:00:10.020Z')}`), { headers: auth });
    expect(res.headers.get('content-type')).toMatch(/text\/csv/);
    const lines = (await res.text()).split('\r\n');
    expect(lines[0]).toBe('record,transaction_id,created_at,kind,amount,balance_before,balance_after,event_id,source_type,source_id,occurred_at,description,exact_balance');
    expect(lines[1]).toMatch(/^opening,\d+,2029-01-01T00:00:09\.990Z,,,,998,,,,,opening balance,998$/);
    expect(lines[2]).toMatch(/^entry,\d+,2029-01-01T00:00:09\.990Z,grant,1,998,999,e-999,gift,,,row 999,$/);
    expect(lines[3]).toBe(lines[3]!.replace(/.*/, (l) => l)); // present
    expect(lines[3]).toContain(`,"'=HYPERLINK(""http://x"",""y""), said ""a""",`);
    expect(lines[5]).toMatch(/^closing,\d+,2029-01-01T00:00:10\.020Z,,,,1001,,,,,closing balance; 3 entries,1001$/);
    expect(lines[6]).toBe('');
  });

  it('an aborted download releases its cursor and connection (pg_stat_activity)', async () => {
    for (let round = 0; round < 3; round++) {
      const ctl = new AbortController();
      const res = await fetch(statementUrl(round % 2 ? 'csv' : 'ndjson'), { headers: auth, signal: ctl.signal });
      const reader = res.body!.getReader();
      await reader.read();
      await reader.read();
      ctl.abort();
      await reader.cancel().catch(() => {});
    }
    await waitFor('the cursors to close', async () => (await cursorsOpen()) === 0, 20_000, 100);
    // And the process still answers: its pool was not drained by abandoned cursors.
    const after = await fetch(statementUrl('ndjson', `&from=2029-01-01T00:00:00Z&to=2029-01-01T00:00:01Z`), { headers: auth });
    expect((await after.text()).trim().split('\n')).toHaveLength(99 + 2); // entries at 10 ms … 990 ms
  });

  it('a slow reader holds the stream, not the memory: the server stops reading the cursor while the socket is full', async () => {
    const pid = child.pid!;
    const before = await rssKb(pid);
    const res = await fetch(statementUrl('ndjson'), { headers: auth });
    const reader = res.body!.getReader();
    await reader.read();
    await new Promise((r) => setTimeout(r, 2000)); // nothing read meanwhile
    const held = await rssKb(pid);
    expect(await cursorsOpen()).toBeLessThanOrEqual(1);
    await reader.cancel();
    console.log(`statement slow reader: rss_mb before ${before >> 10}, while paused ${held >> 10}`);
    expect(held - before).toBeLessThan(40 * 1024);
    await waitFor('the cursor to close', async () => (await cursorsOpen()) === 0, 20_000, 100);
  });

  it('range and format errors are 400 in the error shape; an asset is required', async () => {
    for (const q of ['', '&format=xml', '&from=2029-01-02T00:00:00Z&to=2029-01-01T00:00:00Z', '&from=0000-01-01T00:00:00Z', '&to=garbage']) {
      const url = q === '' ? `${base}/v1/users/heavy/statement` : statementUrl('ndjson', q).replace('&format=ndjson&format=xml', '&format=xml');
      const res = await fetch(url, { headers: auth });
      expect(res.status, q).toBe(400);
      expect((await res.json()).error.code).toMatch(/invalid_request|invalid_range/);
    }
    const wide = await fetch(statementUrl('ndjson', '&from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59.999Z'), { headers: auth });
    expect(wide.status).toBe(200);
    await wide.body!.cancel();
    // An early `to` is echoed with its own year (a Date parsed from PostgreSQL's text once read 0050 as 1950).
    const early = await fetch(statementUrl('ndjson', '&from=0001-01-01T00:00:00Z&to=0050-06-01T00:00:00Z'), { headers: auth });
    expect(early.status).toBe(200);
    const first = JSON.parse((await early.text()).split('\n')[0]!);
    expect(JSON.stringify(first)).toContain('"0050-06-01T00:00:00.000Z"');
    expect(JSON.stringify(first)).not.toContain('1950');
  });
});
