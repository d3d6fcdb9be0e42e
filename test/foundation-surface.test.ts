import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../src/db/client.ts';
import { migrate } from '../src/db/migrate.ts';
import { ADMIN_TOKEN, API_TOKEN, createWorld, PG_BASE, uniqueName, type TestWorld } from './helpers/env.ts';
import { ROOT, startTally, type InProcessTally } from './helpers/tally.ts';

const run = promisify(execFile);
let world: TestWorld;
let tally: InProcessTally;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world, ['api']);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

function cli(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, [join(ROOT, 'bin', 'tally.mjs'), ...args], { env: { ...process.env, ...world.childEnv, ...env }, timeout: 60_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }),
  );
}

describe('HTTP surface', () => {
  it('401 without or with a wrong token, 403 for the API token on an admin route, JSON errors', async () => {
    const none = await tally.http('GET', '/v1/users/a/balances/points', undefined, null);
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('unauthorized');
    expect((await tally.http('GET', '/v1/users/a/balances/points', undefined, 'nope')).status).toBe(401);
    const forbidden = await tally.http('PUT', '/v1/admin/config', {}, API_TOKEN);
    expect(forbidden.status).toBe(403);
    expect((await tally.http('GET', '/v1/users/a/balances/points', undefined, ADMIN_TOKEN)).status).toBe(200);
    expect((await tally.http('GET', '/healthz', undefined, null)).body).toEqual({ status: 'ok', postgres: 'ok', redis: 'ok' });
  });

  it('bad input is a 4xx with a JSON error', async () => {
    const badId = await tally.http('GET', '/v1/users/12345/balances/points');
    expect(badId.status).toBe(400);
    expect(badId.body.error.code).toBe('invalid_request');
    const res = await fetch(`${tally.base}/v1/quotes`, { method: 'POST', headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' }, body: '{not json' });
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBeTypeOf('string');
    const q = await tally.http('POST', '/v1/quotes', { user_id: 'a', asset: 'points', source_type: 'tts' });
    expect(q.status).toBe(422);
    expect(q.body.error.message).toMatch(/usage.char_count/);
    const unknown = await tally.http('POST', '/v1/quotes', { user_id: 'a', asset: 'points', source_type: 'nope' });
    expect(unknown.status).toBe(422);
    expect((await tally.http('GET', '/v1/nothing')).status).toBe(404);
  });

  it('quotes the max cost before work: TTS by char_count, video by input_seconds', async () => {
    // Through the typed client (tally/client): the OpenAPI document is exercised by the surface tests too.
    const tts = await tally.client.POST('/v1/quotes', { body: { user_id: 'q', asset: 'points', source_type: 'tts', usage: { char_count: 1000 } } });
    expect(tts.data).toMatchObject({ required: 25, balance: 0, available: 0, sufficient: false });
    const video = await tally.client.POST('/v1/quotes', { body: { user_id: 'q', asset: 'points', source_type: 'video', usage: { input_seconds: 10 } } });
    expect(video.data?.required).toBe(20);
  });

  it('PUT /v1/admin/config refuses an invalid document as a whole; the one in force stays', async () => {
    const before = await world.sql`SELECT max(version)::int AS v FROM config_documents`;
    const bad = await tally.http('PUT', '/v1/admin/config', { assets: { points: {} }, pricing: { points: { x: { mode: 'weird' } } } }, ADMIN_TOKEN);
    expect(bad.status).toBe(422);
    expect(bad.body.error.code).toBe('invalid_config');
    const after = await world.sql`SELECT max(version)::int AS v FROM config_documents`;
    expect(after[0]!.v).toBe(before[0]!.v);
    const same = await tally.http('PUT', '/v1/admin/config', (await import('yaml')).parse(await (await import('node:fs/promises')).readFile(join(ROOT, 'examples/tally.config.yaml'), 'utf8')), ADMIN_TOKEN);
    expect(same.body).toMatchObject({ changed: false, version: before[0]!.v });
  });

  it('POST /v1/admin/maintenance/:task runs a task and returns its JSON summary', async () => {
    const r = await tally.admin.POST('/v1/admin/maintenance/{task}', { params: { path: { task: 'reconcile' } } });
    expect(r.data).toMatchObject({ task: 'reconcile', ok: true, violations: [] });
    const unknown = await tally.admin.POST('/v1/admin/maintenance/{task}', { params: { path: { task: 'nope' } } });
    expect(unknown.response.status).toBe(404);
    expect(unknown.error?.error.code).toBe('unknown_task');
  });
});

describe('database guarantees', () => {
  it('ledger entries are append-only, enforced by the database', async () => {
    await world.sql`INSERT INTO accounts (user_id, asset, balance, total_granted) VALUES ('ao', 'points', 1, 1)`;
    const [a] = await world.sql`SELECT account_id FROM accounts WHERE user_id = 'ao'`;
    await world.sql`INSERT INTO ledger_entries (account_id, user_id, asset, kind, amount, balance_before, balance_after) VALUES (${a!.account_id}, 'ao', 'points', 'grant', 1, 0, 1)`;
    await expect(world.sql`UPDATE ledger_entries SET amount = 2 WHERE user_id = 'ao'`).rejects.toThrow(/append-only/);
    await expect(world.sql`DELETE FROM ledger_entries WHERE user_id = 'ao'`).rejects.toThrow(/append-only/);
    await expect(world.sql`UPDATE accounts SET balance = 5 WHERE user_id = 'ao'`).rejects.toThrow(/balance_is_totals/);
  });

  it('two migrators at once: one applies, the other waits and finds nothing to do', async () => {
    const name = uniqueName('tally_mig');
    const admin = createDb(`${PG_BASE}/postgres`, { max: 1 });
    await admin`CREATE DATABASE ${admin(name)}`;
    const a = createDb(`${PG_BASE}/${name}`, { max: 1 });
    const b = createDb(`${PG_BASE}/${name}`, { max: 1 });
    try {
      const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
      expect([ra.applied.length, rb.applied.length].sort()).toEqual([0, ra.applied.length + rb.applied.length]);
      expect(ra.applied.length + rb.applied.length).toBeGreaterThan(0);
    } finally {
      await a.end();
      await b.end();
      await admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`;
      await admin.end();
    }
  });
});

describe('CLI', () => {
  it('tally migrate creates a missing database and is idempotent', async () => {
    const name = uniqueName('tally_cli');
    const url = `${PG_BASE}/${name}`;
    const first = await cli(['migrate'], { DATABASE_URL: url });
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ task: 'migrate', created: true });
    const second = await cli(['migrate'], { DATABASE_URL: url });
    expect(JSON.parse(second.stdout)).toMatchObject({ created: false, applied: [] });
    const admin = createDb(`${PG_BASE}/postgres`, { max: 1 });
    await admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`;
    await admin.end();
  });

  it('tally config apply refuses an invalid file with a clear error and exit code 2', async () => {
    const file = join(tmpdir(), `${uniqueName('cfg')}.yaml`);
    await writeFile(file, 'assets:\n  points: { default_expiry_days: -1 }\n');
    const r = await cli(['config', 'apply', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/config document refused: assets.points.default_expiry_days/);
    // A missing file or broken YAML: one line naming the file, no stack trace.
    for (const [path, text] of [[join(tmpdir(), `${uniqueName('none')}.yaml`), null], [join(tmpdir(), `${uniqueName('bad')}.yaml`), 'assets: [\n']] as const) {
      if (text !== null) await writeFile(path, text);
      const bad = await cli(['config', 'apply', path]);
      expect(bad.code, path).toBe(2);
      expect(bad.stderr, path).toMatch(new RegExp(`^tally: cannot read config ${path.replaceAll('.', '\\.')}: `));
      expect(bad.stderr, path).not.toMatch(/\n\s+at /);
    }
  });

  it.each([
    [['start', '--bogus'], /Unknown option '--bogus'/],
    [['token', '--user', 'u', '--ttl', '-5'], /--ttl/],
    [['token', '--user', 'a:b'], /--user "a:b" is not a user id/],
    [['token', '--user', 'u', '--ttl', '5x'], /--ttl "5x" is not a duration/],
    [['demo', '--bogus'], /Unknown option '--bogus'/],
    [['webhooks', 'dead', '--x'], /Unknown option '--x'/],
    [['migrate', 'extra'], /takes no arguments/],
    [['dev', 'extra'], /takes no arguments/],
    [['maintenance', 'expire', '--x'], /tally maintenance expire\|/],
    [['config', 'apply', 'a.yaml', 'b.yaml'], /tally config apply FILE/],
  ])('tally %j is a usage error: one line on stderr, exit 2, nothing done', async (args, message) => {
    const r = await cli(args as string[]);
    expect({ code: r.code, lines: r.stderr.trim().split('\n').length }).toEqual({ code: 2, lines: 1 });
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/TypeError|\n\s+at /);
  });

  it('tally, tally help, tally --help and -h print the usage on stdout and exit 0', async () => {
    for (const args of [[], ['help'], ['--help'], ['-h']]) {
      const r = await cli(args);
      expect({ args, code: r.code }).toEqual({ args, code: 0 });
      expect(r.stdout).toMatch(/^usage:\n  tally migrate/);
    }
  });

  it('tally maintenance prints one JSON summary on stdout', async () => {
    const r = await cli(['maintenance', 'expire']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ task: 'expire', batches_expired: 0 });
  });

  it('tally start refuses to start without tokens unless TALLY_DEV=1', async () => {
    const r = await cli(['start', '--role', 'api'], { TALLY_API_TOKEN: '', TALLY_ADMIN_TOKEN: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing to start without TALLY_API_TOKEN and TALLY_ADMIN_TOKEN/);
  });
});
