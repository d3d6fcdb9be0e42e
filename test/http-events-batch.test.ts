import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/modules.ts';
import { QUEUE } from '../src/queues/common.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

/** `POST /v1/events?mode=batch`: the same call, enqueued as one batch job per queue instead of one job per event. */
let world: TestWorld;
let tally: InProcessTally;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world, ['api', 'worker']);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

const grant = (id: string, user: string, amount = 100) => ({ type: 'grant', event_id: id, user_id: user, asset: 'credits', amount, source: 'gift' });
const charge = (id: string, user: string, amount = 7) => ({ type: 'charge', event_id: id, user_id: user, asset: 'credits', source_type: 'llm', source_id: id, amount, policy: 'guarded' });

async function post(events: unknown[], query: Record<string, string>) {
  return tally.http('POST', `/v1/events?${new URLSearchParams(query)}`, { events });
}

describe('POST /v1/events?mode=batch', () => {
  it('enqueues one batch job per queue holding its accepted events in the order sent; answers as the default mode does', async () => {
    const events = [
      grant('mb-g1', 'mb'),
      charge('mb-c1', 'mb'),
      { type: 'affinity.event', event_id: 'mb-a1', user_id: 'mb', device_id: 'd1', rule_key: 'chat', source: 'test' },
      { ...grant('mb-bad', 'mb'), amount: 1.5 },
      grant('mb-g2', 'mb', 5),
    ];
    const res = await post(events, { mode: 'batch' });
    expect(res.status).toBe(202);
    expect(res.body.accepted).toEqual(['mb-g1', 'mb-c1', 'mb-a1', 'mb-g2']);
    expect(res.body.rejected.map((r: any) => [r.index, r.code])).toEqual([[3, 'invalid_payload']]);
    // No job per event: one batch job on each queue.
    expect(await tally.producer.queue(QUEUE.grants).getJob('mb-g1')).toBeUndefined();
    const batches = await tally.producer.queue(QUEUE.grants).getJobs(['waiting', 'active', 'completed']);
    const mine = batches.filter((j) => j.name === 'batch' && (j.data.events as any[]).some((e) => e.event_id === 'mb-g1'));
    expect(mine).toHaveLength(1);
    expect((mine[0]!.data.events as any[]).map((e) => e.event_id)).toEqual(['mb-g1', 'mb-g2']);
  });

  it('?wait=true answers the same results in both modes, rejections and worker verdicts in place', async () => {
    // Queues are consumed independently (in either mode): the grant goes first, in a call of its own.
    for (const p of ['wj', 'wb']) expect((await post([grant(`${p}-g`, p, 50)], { wait: 'true' })).body.results[0].outcome).toBe('applied');
    const scenario = (p: string) => [
      charge(`${p}-c0`, p, 1),
      { type: 'nope' },
      charge(`${p}-c1`, p, 20),
      charge(`${p}-c2`, p, 40), // more than is left: guarded
      { ...grant(`${p}-x`, p), asset: 'gold' }, // refused by the worker against the config
      { type: 'affinity.event', event_id: `${p}-a`, user_id: p, device_id: 'd', rule_key: 'chat', source: 't' },
    ];
    const strip = (rs: any[]) => rs.map((r) => (r.failed ? { failed: r.failed } : { outcome: r.outcome, amount: r.amount, balance_after: r.balance_after, after: r.after }));
    const jobs = await post(scenario('wj'), { wait: 'true' });
    const batch = await post(scenario('wb'), { wait: 'true', mode: 'batch' });
    expect(jobs.status).toBe(200);
    expect(batch.status).toBe(200);
    expect(strip(batch.body.results)).toEqual(strip(jobs.body.results));
    expect(strip(batch.body.results)).toEqual([
      { outcome: 'applied', amount: 1, balance_after: 49 },
      { failed: 'invalid_payload' },
      { outcome: 'applied', amount: 20, balance_after: 29 },
      { outcome: 'rejected_insufficient', amount: 40, balance_after: 29 },
      { failed: 'invalid_payload' },
      { outcome: 'applied', after: 2 },
    ]);
    expect(batch.body.results[4].reason).toMatch(/unknown asset "gold"/);
  });

  it('exactly once across modes: events sent as jobs, then as a batch, then as jobs again, apply once', async () => {
    const events = [grant('x-g', 'across', 40), { ...charge('x-c', 'across', 15), policy: 'postpaid' }]; // postpaid: the queues run independently
    const first = await post(events, { wait: 'true' });
    expect(first.body.results.map((r: any) => r.outcome)).toEqual(['applied', 'applied']);
    const second = await post(events, { wait: 'true', mode: 'batch' });
    expect(second.body.results.map((r: any) => [r.outcome, r.original_outcome])).toEqual([['noop_duplicate', 'applied'], ['noop_duplicate', 'applied']]);
    expect(second.body.results[1]).toMatchObject({ amount: 15, transaction_id: first.body.results[1].transaction_id });
    const fresh = [grant('y-g', 'across2', 10)];
    await post(fresh, { wait: 'true', mode: 'batch' });
    await tally.producer.queue(QUEUE.grants).remove('y-g'); // nothing there by that id: the batch job holds it
    const third = await post(fresh, { wait: 'true' });
    expect(third.body.results[0]).toMatchObject({ outcome: 'noop_duplicate', original_outcome: 'applied' });
    const [row] = await world.sql`SELECT balance FROM accounts WHERE user_id = 'across' AND asset = 'credits'`;
    expect(Number(row!.balance)).toBe(25);
  });

  it('a mode other than jobs or batch is a 400 in the error shape', async () => {
    const res = await post([grant('m-1', 'm')], { mode: 'bulk' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
  });
});
