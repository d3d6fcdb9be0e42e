import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/modules.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { ADMIN_TOKEN, startTally, type InProcessTally } from './helpers/tally.ts';

/**
 * A resend of an event whose job already finished (completed jobs are kept 24 h, failed ones for inspection):
 * BullMQ ignores an add whose jobId exists, so the resend used to be "accepted" and never decided — a corrected
 * payload never applied, a conflicting one answered the original `applied`. tally's own producers (SDK, POST
 * /v1/events, the admin adjust route) replace a finished job (failed, or completed with any payload), and PostgreSQL
 * decides the resend: a replay answers noop_duplicate with the original result (CONTRACT §3), as after the job's removal.
 */
let world: TestWorld;
let tally: InProcessTally;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

const balance = async (user: string, asset: string) => (await tally.http('GET', `/v1/users/${user}/balances/${asset}`)).body.balance;

describe('a resend while the first job is still kept', () => {
  it('SDK: a corrected payload after invalid_payload applies; the same payload is noop_duplicate; another payload idempotency_conflict', async () => {
    const bad = { event_id: 'rs-g1', user_id: 'rs-u1', asset: 'pointz', amount: 40, source: 'gift' };
    await expect(tally.producer.grant(bad, { wait: true })).rejects.toThrow(/^invalid_payload/);
    expect((await tally.producer.queue('grants').getJobState('rs-g1'))).toBe('failed');
    const fixed = { ...bad, asset: 'points' };
    expect(await tally.producer.grant(fixed, { wait: true })).toMatchObject({ outcome: 'applied', amount: 40 });
    expect(await balance('rs-u1', 'points')).toBe(40);
    // The same payload again: a replay, answered by PostgreSQL with the original result — nothing applied twice.
    const replay = (await tally.producer.grant(fixed, { wait: true })) as { outcome: string; transaction_id: string };
    expect(replay).toMatchObject({ outcome: 'noop_duplicate', original_outcome: 'applied', amount: 40 });
    await expect(tally.producer.grant({ ...fixed, amount: 400 }, { wait: true })).rejects.toThrow(/^idempotency_conflict/);
    expect(await balance('rs-u1', 'points')).toBe(40);
    // The first failure is still on record.
    const [dead] = await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM dead_letters WHERE event_id = 'rs-g1'`;
    expect(dead!.n).toBeGreaterThanOrEqual(1);
  });

  it('POST /v1/events?wait=true: a replay is noop_duplicate with the original result, another payload idempotency_conflict, a corrected one applies', async () => {
    const charge = { type: 'charge', event_id: 'rs-c1', user_id: 'rs-u2', asset: 'points', source_type: 'script', source_id: 's', amount: 5, policy: 'postpaid' };
    const first = await tally.http('POST', '/v1/events?wait=true', { events: [charge] });
    expect(first.body.results[0]).toMatchObject({ outcome: 'applied', amount: 5 });
    const again = await tally.http('POST', '/v1/events?wait=true', { events: [charge] });
    // A replay while the first job is still kept (24 h): noop_duplicate, as after its removal; applied once.
    expect(again.body.results[0]).toEqual({ ...first.body.results[0], outcome: 'noop_duplicate', original_outcome: 'applied' });
    const other = await tally.http('POST', '/v1/events?wait=true', { events: [{ ...charge, amount: 50 }] });
    expect(other.body.results[0]).toMatchObject({ failed: 'idempotency_conflict' });
    expect(await balance('rs-u2', 'points')).toBe(-5);
    // Without waiting, the corrected resend of a failed event is applied too.
    const badGrant = { type: 'grant', event_id: 'rs-g2', user_id: 'rs-u2', asset: 'pointz', amount: 9, source: 'gift' };
    expect((await tally.http('POST', '/v1/events?wait=true', { events: [badGrant] })).body.results[0]).toMatchObject({ failed: 'invalid_payload' });
    expect((await tally.http('POST', '/v1/events', { events: [{ ...badGrant, asset: 'points' }] })).status).toBe(202);
    await expect.poll(() => balance('rs-u2', 'points'), { timeout: 15_000 }).toBe(4);
  });

  it('admin affinity adjust: the same event_id with another delta is not answered with the first result; the same one is noop_duplicate', async () => {
    const adjust = { event_id: 'rs-a1', user_id: 'rs-u3', device_id: 'd1', delta: 1, operator_id: 'op', reason: 'test' };
    const first = await tally.http('POST', '/v1/admin/affinity/adjust', adjust, ADMIN_TOKEN);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ outcome: 'applied', change: 1 });
    const again = await tally.http('POST', '/v1/admin/affinity/adjust', adjust, ADMIN_TOKEN);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ outcome: 'noop_duplicate', original_outcome: 'applied', change: 1 });
    const other = await tally.http('POST', '/v1/admin/affinity/adjust', { ...adjust, delta: 300 }, ADMIN_TOKEN);
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('idempotency_conflict');
    const read = await tally.http('GET', '/v1/users/rs-u3/devices/d1/affinity');
    expect(read.body.value).toBe(1);
    await expectInvariants(world.sql);
  });
});
