import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/modules.ts';
import { ADMIN_TOKEN, API_TOKEN, createWorld, type TestWorld } from './helpers/env.ts';
import { startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;
let tally: InProcessTally;

const basic = `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`;
const bearer = `Bearer ${ADMIN_TOKEN}`;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world, ['api', 'worker']);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

async function board(method: string, path: string, authorization: string, body?: unknown, extra: Record<string, string> = {}) {
  const headers: Record<string, string> = { authorization, ...extra };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${tally.base}/admin/queues/api${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, text: await res.text() };
}

interface AuditRow {
  credential: string;
  ip: string;
  method: string;
  path: string;
  action: string;
  queue: string | null;
  job_id: string | null;
  request: unknown;
  status: number | null;
}
const rows = () => world.sql<AuditRow[]>`SELECT credential, ip, method, path, action, queue, job_id, request, status FROM admin_audit ORDER BY audit_id`;

/** A charge that fails as bad input (its asset does not exist), left in the failed set for an operator. */
async function failedJob(eventId: string) {
  const payload = { type: 'charge', event_id: eventId, user_id: 'midas', asset: 'gold', amount: 7, source_type: 'vault', source_id: 'v1', policy: 'postpaid' };
  const job = await tally.producer.queue('charges').add('charge', payload, { jobId: eventId });
  await tally.producer.result('charges', job).catch(() => {});
  expect(await tally.producer.queue('charges').getJobState(eventId)).toBe('failed');
}

describe('Bull Board actions are audited with the admin identity (issue 10 item 8)', () => {
  it('a retry (Bearer), an add and a clean (Basic, as a browser) each leave a row: who, from where, what, outcome', async () => {
    await failedJob('audit-retry-1');
    expect((await board('PUT', '/queues/charges/audit-retry-1/retry', bearer)).status).toBe(204);
    const added = await board('POST', '/queues/grants/add', basic, {
      name: 'grant',
      data: { type: 'grant', event_id: 'audit-add-1', user_id: 'aud', asset: 'points', amount: 3, source: 'gift' },
      options: { jobId: 'audit-add-1' },
    });
    expect(added.status).toBe(200);
    expect((await board('PUT', '/queues/affinity-events/clean/completed', basic)).status).toBe(200);
    // A read is not an action.
    expect((await board('GET', '/queues', bearer)).status).toBe(200);

    const got = await waitFor('three audited outcomes', async () => {
      const r = await rows();
      return r.length === 3 && r.every((x) => x.status !== null) ? r : undefined;
    }, 10_000);
    expect(got).toMatchObject([
      { credential: 'bearer', ip: '127.0.0.1', method: 'PUT', action: 'PUT /admin/queues/api/queues/:queueName/:jobId/retry', queue: 'charges', job_id: 'audit-retry-1', status: 204 },
      { credential: 'basic', ip: '127.0.0.1', method: 'POST', action: 'POST /admin/queues/api/queues/:queueName/add', queue: 'grants', job_id: null, status: 200 },
      { credential: 'basic', method: 'PUT', path: '/admin/queues/api/queues/affinity-events/clean/completed', queue: 'affinity-events', status: 200 },
    ]);
    expect(got[1]!.request).toMatchObject({ data: { event_id: 'audit-add-1', amount: 3 } });
    const all = JSON.stringify(await world.sql`SELECT audit_id::text, at::text, credential, ip, user_agent, method, path, action, queue, job_id, request::text, status FROM admin_audit`);
    expect(all).not.toContain(ADMIN_TOKEN);
    expect(all).not.toContain(Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64'));
  });

  it('a refused attempt (no token, wrong token, the API token) runs nothing and records nothing', async () => {
    await failedJob('audit-refused-1');
    const before = (await rows()).length;
    for (const auth of ['', 'Bearer wrong-token-0123456789', `Bearer ${API_TOKEN}`]) {
      expect([401, 403]).toContain((await board('PUT', '/queues/charges/audit-refused-1/retry', auth)).status);
    }
    expect((await rows()).length).toBe(before);
    expect(await tally.producer.queue('charges').getJobState('audit-refused-1')).toBe('failed');
  });

  it('no audit row, no action: while the audit cannot be written the board refuses to act (503)', async () => {
    await failedJob('audit-down-1');
    await world.sql`ALTER TABLE admin_audit RENAME TO admin_audit_away`;
    try {
      const r = await board('PUT', '/queues/charges/audit-down-1/retry', bearer);
      expect(r.status).toBe(503);
      expect(JSON.parse(r.text).error.code).toBe('audit_unavailable');
    } finally {
      await world.sql`ALTER TABLE admin_audit_away RENAME TO admin_audit`;
    }
    expect(await tally.producer.queue('charges').getJobState('audit-down-1')).toBe('failed');
  });

  it('admin API writes are audited too; the table is append-only but for the one outcome update', async () => {
    expect((await tally.http('POST', '/v1/admin/maintenance/reconcile', undefined, ADMIN_TOKEN)).status).toBe(200);
    const last = await waitFor('the maintenance audit row', async () => {
      const r = await rows();
      return r.at(-1)?.action === 'POST /v1/admin/maintenance/:task' && r.at(-1)!.status !== null ? r.at(-1) : undefined;
    }, 10_000);
    expect(last).toMatchObject({ credential: 'bearer', path: '/v1/admin/maintenance/reconcile', status: 200 });
    await expect(world.sql`UPDATE admin_audit SET ip = '10.0.0.1'`).rejects.toThrow(/append-only/);
    await expect(world.sql`UPDATE admin_audit SET status = 500`).rejects.toThrow(/append-only/);
    await expect(world.sql`DELETE FROM admin_audit`).rejects.toThrow(/append-only/);
    await expect(world.sql`TRUNCATE admin_audit`).rejects.toThrow(/append-only/);
  });

  it('the IP recorded is the client\'s: X-Forwarded-For only counts behind a trusted proxy (TALLY_TRUST_PROXY)', async () => {
    await failedJob('audit-xff-1');
    await board('PUT', '/queues/charges/audit-xff-1/retry', bearer, undefined, { 'x-forwarded-for': '203.0.113.7' });
    const proxied = await startTally(world, ['api'], { TALLY_TRUST_PROXY: '127.0.0.1' });
    try {
      await failedJob('audit-xff-2');
      const res = await fetch(`${proxied.base}/admin/queues/api/queues/charges/audit-xff-2/retry`, {
        method: 'PUT',
        headers: { authorization: bearer, 'x-forwarded-for': '203.0.113.8' },
      });
      expect(res.status).toBe(204);
    } finally {
      await proxied.stop();
    }
    const r = await world.sql<{ job_id: string; ip: string }[]>`SELECT job_id, ip FROM admin_audit WHERE job_id LIKE 'audit-xff-%' ORDER BY audit_id`;
    expect(r).toEqual([
      { job_id: 'audit-xff-1', ip: '127.0.0.1' },
      { job_id: 'audit-xff-2', ip: '203.0.113.8' },
    ]);
  });
});
