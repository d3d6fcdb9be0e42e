import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchJobId } from '../src/producers/index.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

/** The SDK's bulk methods (tally/producers): batch jobs by default, one job per event on request. */
let world: TestWorld;
let tally: InProcessTally;
let n = 0;
const id = (p: string) => `${p}-${++n}-${Date.now().toString(36)}`;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world, ['worker']);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

async function balance(user: string): Promise<number> {
  const [row] = await world.sql<{ balance: string }[]>`SELECT balance FROM accounts WHERE user_id = ${user} AND asset = 'points'`;
  return Number(row?.balance ?? 0);
}

describe('TallyProducer bulk methods', () => {
  it('send batch jobs of at most 1000 events, in order, each user\'s order kept across chunks', async () => {
    const users = [id('bu'), id('bu'), id('bu')];
    await tally.producer.grantBulk(users.map((u) => ({ event_id: id('g'), user_id: u, asset: 'points', amount: 2_500, source: 'gift', expires_at: null })));
    // 2,502 guarded charges of 3, 834 per user: each can pay 833 of them, in order; the last is refused.
    const charges = Array.from({ length: 2_502 }, (_, i) => ({
      event_id: id('c'), user_id: users[i % 3]!, asset: 'points', source_type: 'script', source_id: `s${i}`, amount: 3, policy: 'guarded' as const,
    }));
    const jobs = await tally.producer.chargeBulk(charges);
    expect(jobs.map((j) => [j.name, (j.data as { events: unknown[] }).events.length])).toEqual([['batch', 1000], ['batch', 1000], ['batch', 502]]);
    const results = (await tally.producer.eventResults('charges', jobs, 90_000)) as { outcome: string; balance_after: number }[];
    expect(results).toHaveLength(2_502);
    // Per user: the first 833 applied, the later ones refused — never a later one applied before an earlier one.
    for (const u of users) {
      const mine = results.filter((_, i) => charges[i]!.user_id === u);
      const firstRefused = mine.findIndex((r) => r.outcome === 'rejected_insufficient');
      expect(firstRefused).toBe(833);
      expect(mine.slice(firstRefused).every((r) => r.outcome === 'rejected_insufficient')).toBe(true);
      expect(mine[832]).toMatchObject({ outcome: 'applied', balance_after: 1 });
      expect(await balance(u)).toBe(1);
    }
    await expectInvariants(world.sql);
  }, 120_000);

  it('{ batch: false } sends one job per event (jobId = event_id), and eventResults answers those too', async () => {
    const u = id('single');
    const grants = [10, 20].map((amount) => ({ event_id: id('g'), user_id: u, asset: 'points', amount, source: 'gift' }));
    const jobs = await tally.producer.grantBulk(grants, { batch: false });
    expect(jobs.map((j) => [j.id, j.name])).toEqual(grants.map((g) => [g.event_id, 'grant']));
    const results = await tally.producer.eventResults('grants', jobs);
    expect(results.map((r: any) => r.outcome)).toEqual(['applied', 'applied']);
    expect(await balance(u)).toBe(30);
  });

  it('the same chunk sent again is the same batch job id (from its events), decided again: each event noop_duplicate', async () => {
    const u = id('again');
    const grants = [{ event_id: id('g'), user_id: u, asset: 'points', amount: 4, source: 'gift' }];
    const [first] = await tally.producer.grantBulk(grants);
    const r1 = await tally.producer.eventResults('grants', [first!]);
    const [second] = await tally.producer.grantBulk(grants);
    expect(second!.id).toBe(first!.id);
    expect(second!.id).toBe(batchJobId(grants.map((g) => ({ ...g, type: 'grant' }))));
    // The finished job is replaced and decided again, by event_id: a replay, with the original result.
    expect(await tally.producer.eventResults('grants', [second!])).toEqual([{ ...r1[0], outcome: 'noop_duplicate', original_outcome: 'applied' }]);
    // The same after the batch job's removal.
    await tally.producer.queue('grants').remove(first!.id!);
    const [third] = await tally.producer.grantBulk(grants);
    expect((await tally.producer.eventResults('grants', [third!]))[0]).toMatchObject({ outcome: 'noop_duplicate', original_outcome: 'applied' });
    expect(await balance(u)).toBe(4);
  });

  it('bulk() mixes a queue\'s types in order; a bad payload throws before anything is enqueued', async () => {
    const u = id('mix');
    const c = { type: 'charge', event_id: id('c'), user_id: u, asset: 'points', source_type: 'script', source_id: 's', amount: 5, policy: 'postpaid' };
    const events = [c, { type: 'refund', event_id: id('rf'), charge_event_id: c.event_id, amount: 2 }];
    const results = await tally.producer.eventResults('charges', await tally.producer.bulk('charges', events));
    expect(results).toEqual([expect.objectContaining({ outcome: 'applied', balance_after: -5 }), expect.objectContaining({ outcome: 'applied', amount: 2, balance_after: -3 })]);
    const before = await tally.producer.queue('charges').count();
    await expect(tally.producer.bulk('charges', [c, { ...c, event_id: id('c'), amount: -1 }])).rejects.toThrow(/^invalid_payload: amount/);
    await expect(tally.producer.bulk('charges', [{ type: 'grant', event_id: id('g') }])).rejects.toThrow(/^invalid_payload/);
    await expect(tally.producer.chargeBulk([], { batchSize: 0 })).rejects.toThrow(/batchSize/);
    expect(await tally.producer.queue('charges').count()).toBe(before);
  });
});
