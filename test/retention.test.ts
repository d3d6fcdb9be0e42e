import { WebSocket } from 'ws';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import '../src/modules.ts';
import { EnvError, parseEnv } from '../src/config/env.ts';
import { ConfigCache } from '../src/config/store.ts';
import { MAINTENANCE_TASKS } from '../src/maintenance/tasks.ts';
import { Limiter, resume } from '../src/push/replay.ts';
import { PushSession } from '../src/push/session.ts';
import { readUserFeed } from '../src/push/sql/read-user-feed.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';

let world: TestWorld;
beforeAll(async () => {
  world = await createWorld();
});
afterAll(async () => {
  await world?.drop();
});

async function runTask(name: string, env: Record<string, string> = {}): Promise<any> {
  return MAINTENANCE_TASKS.get(name)!({ sql: world.sql, configs: new ConfigCache(), env: parseEnv({ ...world.childEnv, ...env }) });
}

const seqs = async () =>
  (await world.sql<{ seq: bigint | null }[]>`SELECT seq FROM outbox ORDER BY seq NULLS LAST, outbox_id`).map((r) => (r.seq === null ? null : Number(r.seq)));
const mark = async (m: string) => Number((await world.sql<{ seq: bigint }[]>`SELECT seq FROM outbox_feed WHERE mark = ${m}`)[0]!.seq);

describe('outbox retention (outbox-prune)', () => {
  /**
   * The feed as the relay leaves it: seq 1–10 published 30 h ago, 11–13 published 2 h ago, 14–15 sequenced but
   * not yet published, and two rows not even sequenced (written 30 h ago, their commit just became visible).
   */
  beforeEach(async () => {
    await world.sql`DELETE FROM outbox`;
    await world.sql`DELETE FROM outbox_cursors`;
    await world.sql`
      INSERT INTO outbox (user_id, type, data, created_at, relayed_at, seq)
      SELECT 'u-' || (s % 2), 'balance_changed', jsonb_build_object('asset', 'points', 'balance', s, 'transaction_id', s::text),
        now() - CASE WHEN s <= 10 THEN interval '30 hours' ELSE interval '2 hours' END,
        CASE WHEN s <= 10 THEN now() - interval '30 hours' WHEN s <= 13 THEN now() - interval '2 hours' END,
        s
      FROM generate_series(1, 15) s`;
    await world.sql`
      INSERT INTO outbox (user_id, type, data, created_at)
      SELECT 'u-1', 'balance_changed', '{}'::jsonb, now() - interval '30 hours' FROM generate_series(1, 2)`;
    await world.sql`UPDATE outbox_feed SET seq = CASE mark WHEN 'sequenced' THEN 15 WHEN 'published' THEN 13 ELSE 0 END`;
  });

  it('deletes published rows older than the retention, and nothing younger, unpublished or unsequenced', async () => {
    const summary = await runTask('outbox-prune');
    expect(summary).toMatchObject({ task: 'outbox-prune', deleted: 10, retention_hours: 24 });
    expect(await seqs()).toEqual([11, 12, 13, 14, 15, null, null]);
    expect(await mark('pruned')).toBe(10);
  });

  it('takes its retention from TALLY_OUTBOX_RETENTION_HOURS, still never a row not yet published', async () => {
    const summary = await runTask('outbox-prune', { TALLY_OUTBOX_RETENTION_HOURS: '1' });
    expect(summary).toMatchObject({ deleted: 13, retention_hours: 1 });
    expect(await seqs()).toEqual([14, 15, null, null]);
    // 48 h keeps every row of this feed.
    expect(await runTask('outbox-prune', { TALLY_OUTBOX_RETENTION_HOURS: '48' })).toMatchObject({ deleted: 0 });
  });

  it('never deletes a row a registered feed consumer (webhook fan-out) has not passed', async () => {
    await world.sql`INSERT INTO outbox_cursors (consumer, position) VALUES ('webhooks', 4)`;
    expect(await runTask('outbox-prune')).toMatchObject({ deleted: 4, consumers: [{ consumer: 'webhooks', position: '4' }] });
    expect((await seqs())[0]).toBe(5);
    await world.sql`UPDATE outbox_cursors SET position = 12`;
    expect(await runTask('outbox-prune')).toMatchObject({ deleted: 6 });
    expect(await mark('pruned')).toBe(10);
  });

  it('a client resuming from a seq inside the window still replays what it missed; one from before it gets resync', async () => {
    await runTask('outbox-prune');
    const replayed = await resumeFrom(11n);
    expect(replayed.result).toBe('replayed');
    // u-1's rows after 11: 13, 15 (odd seqs are u-1's).
    expect(replayed.sent.map((m) => m.id)).toEqual(['ob-13', 'ob-15']);
    const old = await resumeFrom(5n);
    expect(old.result).toBe('resync');
    expect(old.sent[0]).toMatchObject({ type: 'resync', data: { reason: 'since_pruned' } });
  });
});

/** resume() on a real PushSession over a stand-in socket that records what it is sent. */
async function resumeFrom(since: bigint): Promise<{ result: string; sent: any[] }> {
  const sent: any[] = [];
  const ws = { readyState: WebSocket.OPEN, bufferedAmount: 0, send: (raw: string) => sent.push(JSON.parse(raw)), close() {}, terminate() {} };
  const session = new PushSession(ws as never, 'u-1', 's-1', true, () => {}, () => 1 << 20);
  const result = await resume(session, since, (u, after, limit) => readUserFeed(world.sql, u, after, limit), new Limiter(1), 100);
  return { result, sent };
}

describe('Idempotency-Key retention (idempotency-keys)', () => {
  beforeEach(async () => {
    await world.sql`DELETE FROM idempotency_keys`;
    await world.sql`
      INSERT INTO idempotency_keys (scope, idem_key, request_hash, status, owner, lease_until, response_status, response_body, created_at)
      SELECT 's', k, 'h', 'done', 'o', tally_now(), 201, '{}', tally_now() - age
      FROM (VALUES ('fresh', interval '1 minute'), ('almost-a-day', interval '23 hours 59 minutes'),
                   ('a-day-and-a-bit', interval '24 hours 1 minute'), ('two-days', interval '49 hours')) AS v(k, age)`;
  });
  const keys = async () => (await world.sql<{ idem_key: string }[]>`SELECT idem_key FROM idempotency_keys ORDER BY created_at DESC`).map((r) => r.idem_key);

  it('keeps every key younger than 24 h and prunes the older ones', async () => {
    expect(await runTask('idempotency-keys')).toMatchObject({ task: 'idempotency-keys', retention_hours: 24, pruned: 2 });
    expect(await keys()).toEqual(['fresh', 'almost-a-day']);
  });

  it('keeps them longer when TALLY_IDEMPOTENCY_RETENTION_HOURS says so, in chunks of TALLY_PRUNE_CHUNK', async () => {
    expect(await runTask('idempotency-keys', { TALLY_IDEMPOTENCY_RETENTION_HOURS: '48', TALLY_PRUNE_CHUNK: '1' })).toMatchObject({ retention_hours: 48, pruned: 1 });
    expect(await keys()).toEqual(['fresh', 'almost-a-day', 'a-day-and-a-bit']);
  });

  it('refuses a retention below the 24 h the contract promises', () => {
    expect(() => parseEnv({ ...world.childEnv, TALLY_IDEMPOTENCY_RETENTION_HOURS: '23' })).toThrow(EnvError);
    expect(() => parseEnv({ ...world.childEnv, TALLY_IDEMPOTENCY_RETENTION_HOURS: '23' })).toThrow(/at least 24 h/);
  });
});

describe('dead-letter retention (dead-letters)', () => {
  beforeEach(async () => {
    await world.sql`DELETE FROM dead_letters`;
    await world.sql`
      INSERT INTO dead_letters (queue, job_id, event_id, reason_code, reason, first_failed_at, last_failed_at)
      SELECT 'charges', j, j, 'invalid_payload', 'invalid_payload: test', now() - age, now() - age
      FROM (VALUES ('old-1', interval '100 days'), ('old-2', interval '91 days'), ('month', interval '30 days'),
                   ('week', interval '7 days'), ('hour', interval '1 hour')) AS v(j, age)`;
  });
  const jobs = async () => (await world.sql<{ job_id: string }[]>`SELECT job_id FROM dead_letters ORDER BY last_failed_at DESC`).map((r) => r.job_id);

  it('prunes dead letters whose last failure is past the retention (90 days by default)', async () => {
    expect(await runTask('dead-letters')).toEqual({ task: 'dead-letters', retention_days: 90, max_rows: 1_000_000, pruned_by_age: 2, pruned_over_cap: 0, kept: 3 });
    expect(await jobs()).toEqual(['hour', 'week', 'month']);
  });

  it('caps the table at TALLY_DEAD_LETTER_MAX_ROWS, oldest last failure first, in chunks', async () => {
    const summary = await runTask('dead-letters', { TALLY_DEAD_LETTER_RETENTION_DAYS: '0', TALLY_DEAD_LETTER_MAX_ROWS: '2', TALLY_PRUNE_CHUNK: '1' });
    expect(summary).toMatchObject({ pruned_by_age: 0, pruned_over_cap: 3, kept: 2 });
    expect(await jobs()).toEqual(['hour', 'week']);
  });

  it('a job failing again restarts its clock', async () => {
    await world.sql`UPDATE dead_letters SET last_failed_at = now(), failures = failures + 1 WHERE job_id = 'old-1'`;
    await runTask('dead-letters');
    expect(await jobs()).toEqual(['old-1', 'hour', 'week', 'month']);
  });

  it('keeps everything with both bounds off', async () => {
    expect(await runTask('dead-letters', { TALLY_DEAD_LETTER_RETENTION_DAYS: '0', TALLY_DEAD_LETTER_MAX_ROWS: '0' })).toMatchObject({ pruned_by_age: 0, pruned_over_cap: 0, kept: 5 });
  });
});
