import { parse as parseYaml } from 'yaml';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/modules.ts'; // every feature module, as the CLI loads them: their workers are counted too
import { EXAMPLE_CONFIG } from '../src/cli/dev.ts';
import { QUEUE } from '../src/queues/common.ts';
import { ADMIN_TOKEN, API_TOKEN, createWorld, type TestWorld } from './helpers/env.ts';
import { startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function get(path: string, authorization?: string, method = 'GET') {
  const res = await fetch(`${tally.base}${path}`, { method, headers: authorization ? { authorization } : {} });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

describe('admin surfaces: Bull Board and the ops dashboard', () => {
  for (const path of ['/admin/queues', '/admin/dashboard', '/admin/dashboard/data', '/admin/queues/api/queues']) {
    it(`${path} refuses no token (401, Basic challenge), a wrong one (401) and the API token (403)`, async () => {
      const none = await get(path);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
      expect((await get(path, `Bearer ${'x'.repeat(30)}`)).status).toBe(401);
      expect((await get(path, basic('admin', 'wrong-password-123456'))).status).toBe(401);
      expect((await get(path, basic('root', ADMIN_TOKEN))).status).toBe(401);
      expect((await get(path, `Bearer ${API_TOKEN}`)).status).toBe(403);
    });

    it(`${path} opens with the admin token as Bearer and as Basic password of user admin`, async () => {
      expect((await get(path, `Bearer ${ADMIN_TOKEN}`)).status).toBe(200);
      expect((await get(path, basic('admin', ADMIN_TOKEN))).status).toBe(200);
    });
  }

  it('Bull Board API errors come in the error shape, with Bull Board key kept', async () => {
    for (const [method, path] of [
      ['PUT', '/admin/queues/api/queues/nope/retry/failed'],
      ['PUT', '/admin/queues/api/queues/charges/no-such-job/retry'],
      ['GET', '/admin/queues/api/queues/charges/no-such-job'],
    ] as const) {
      const r = await get(path, `Bearer ${ADMIN_TOKEN}`, method);
      expect(r.status, path).toBeGreaterThanOrEqual(400);
      const body = JSON.parse(r.text);
      expect(body.error, path).toMatchObject({ code: expect.stringMatching(/^[a-z_]+$/), message: expect.any(String) });
    }
    const missing = JSON.parse((await get('/admin/queues/api/queues/nope/retry/failed', `Bearer ${ADMIN_TOKEN}`, 'PUT')).text);
    expect(missing.error).toMatchObject({ code: 'queue_not_found', key: 'ERRORS.QUEUE_NOT_FOUND' });
  });

  it('the dashboard serves its two assets and nothing else: prototype names are 404, never 500', async () => {
    expect((await get('/admin/dashboard/assets/uPlot.min.css', `Bearer ${ADMIN_TOKEN}`)).status).toBe(200);
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'nope.js']) {
      expect((await get(`/admin/dashboard/assets/${name}`, `Bearer ${ADMIN_TOKEN}`)).status, name).toBe(404);
    }
  });

  it('Bull Board shows every tally queue, and its UI page and assets load', async () => {
    const page = await get('/admin/queues', basic('admin', ADMIN_TOKEN));
    expect(page.text).toContain('<html');
    const api = JSON.parse((await get('/admin/queues/api/queues', `Bearer ${ADMIN_TOKEN}`)).text);
    const names = api.queues.map((q: { name: string }) => q.name);
    for (const q of Object.values(QUEUE)) expect(names).toContain(q);
  });

  it('retrying a failed job from Bull Board runs it again', async () => {
    // Fails as bad input: the asset does not exist yet.
    const eventId = `gold-${Date.now()}`;
    const payload = { type: 'charge', event_id: eventId, user_id: 'midas', asset: 'gold', amount: 7, source_type: 'vault', source_id: 'v1', policy: 'postpaid' };
    const job = await tally.producer.queue('charges').add('charge', payload, { jobId: eventId });
    const err = await tally.producer.result('charges', job).catch((e: Error) => e);
    expect(String((err as Error).message)).toMatch(/^invalid_payload/);

    // The operator fixes the config, then retries the job from the board.
    const doc = parseYaml(await readFile(EXAMPLE_CONFIG, 'utf8'));
    doc.assets.gold = { default_expiry_days: null };
    await world.applyConfig(doc);
    const retry = await get(`/admin/queues/api/queues/charges/${eventId}/retry`, `Bearer ${ADMIN_TOKEN}`, 'PUT');
    expect(retry.status).toBe(204);
    const state = await waitFor('the retried job to finish', async () => {
      const s = await tally.producer.queue('charges').getJobState(eventId);
      return s === 'completed' || (s === 'failed' && (await tally.producer.queue('charges').getJob(eventId))!.attemptsStarted > 1) ? s : undefined;
    });
    expect(state).toBe('completed');
    const bal = await tally.http('GET', '/v1/users/midas/balances/gold');
    expect(bal.body.balance).toBe(-7);
  });
});

describe('/metrics and /readyz', () => {
  it('/metrics reports jobs by queue and outcome, latency, queue depth, outbox, reconcile and DB connections', async () => {
    await tally.producer.grant({ event_id: `m-${Date.now()}`, user_id: 'mia', asset: 'points', amount: 5, source: 'gift' }, { wait: true });
    const aff = { type: 'affinity.event', event_id: `a-${Date.now()}`, user_id: 'mia', device_id: 'd1', rule_key: 'chat', source: 'test' };
    await tally.producer.result('affinity-events', await tally.producer.queue('affinity-events').add(aff.type, aff, { jobId: aff.event_id }));
    const text = await waitFor('the job counters to reach Redis', async () => {
      const r = await get('/metrics');
      return /tally_jobs_processed_total\{queue="grants",outcome="applied"\} [1-9]/.test(r.text) &&
        /tally_jobs_processed_total\{queue="affinity-events",outcome="applied"\} 1/.test(r.text) ? r.text : undefined;
    }, 10_000, 200);
    expect(text).toMatch(/tally_jobs_failed_total\{queue="charges",reason="invalid_payload"\} [1-9]/);
    expect(text).toMatch(/tally_job_processing_seconds_bucket\{queue="grants",le="\+Inf"\} [1-9]/);
    expect(text).toMatch(/tally_queue_jobs\{queue="charges",state="waiting"\} 0/);
    expect(text).toMatch(/tally_queue_oldest_waiting_seconds\{queue="affinity-events"\} /);
    expect(text).toMatch(/tally_outbox_pending \d+/);
    expect(text).toMatch(/tally_reconcile_ok (-1|1)/);
    expect(text).toMatch(/tally_db_connections\{state="(idle|active)"\} [1-9]/);
    expect(text).toMatch(/tally_scrape_error\{part="queues"\} 0/);
    expect(text).toContain('tally_process_resident_memory_bytes');
    expect(text).toContain('tally_push_relayed_total'); // other modules' in-process counters (default registry)
  });

  it('/metrics needs TALLY_METRICS_TOKEN when it is set', async () => {
    const guarded = await startTally(world, ['api'], { TALLY_METRICS_TOKEN: 'metrics-token-0123456789' });
    try {
      expect((await fetch(`${guarded.base}/metrics`)).status).toBe(401);
      const ok = await fetch(`${guarded.base}/metrics`, { headers: { authorization: 'Bearer metrics-token-0123456789' } });
      expect(ok.status).toBe(200);
    } finally {
      await guarded.stop();
    }
  });

  it('/readyz is ready with the schema migrated and a config applied', async () => {
    const r = await tally.client.GET('/readyz');
    expect(r.response.status).toBe(200);
    expect(r.data).toEqual({ status: 'ready', postgres: 'ok', redis: 'ok', schema: 'ok', config: 'ok', shutdown: 'ok' });
  });

  it('/readyz is not ready without a config document', async () => {
    const bare = await createWorld();
    const t = await startTally(bare, ['api']);
    try {
      const r = await t.http('GET', '/readyz', undefined, null);
      expect(r.status).toBe(503);
      expect(r.body.config).toMatch(/^error: no config document/);
    } finally {
      await t.stop();
      await bare.drop();
    }
  });
});
