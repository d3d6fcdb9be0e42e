import { USAGE_LIMITS } from '../src/queues/charges/schema.ts';
import '../src/money/register.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PayloadError, type ChargeInput, type SendOptions } from '../src/producers/index.ts';
import { UsageMeter } from '../src/producers/usage-meter.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

// Example config: credits / llm is tokens-priced, gpt-4o-mini 1 per 1k input, 4 per 1k output, min_points 1.
let world: TestWorld;
let tally: InProcessTally;
let n = 0;
const id = (p: string) => `${p}-${++n}-${Date.now().toString(36)}`;
const MODEL = 'gpt-4o-mini';

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world);
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

async function funded(user: string, amount = 100): Promise<void> {
  await tally.producer.grant({ event_id: id('g'), user_id: user, asset: 'credits', amount, source: 'recharge' }, { wait: true });
}
/** A real hold, priced by the server from its usage estimate: 1000 in + 4000 out → ceil(1 + 16) = 17. */
async function hold(user: string): Promise<string> {
  const h = await tally.http('POST', '/v1/holds', {
    event_id: id('h'), user_id: user, asset: 'credits', source_type: 'llm', ttl_seconds: 600,
    usage_estimate: { model: MODEL, input_tokens: 1000, output_tokens: 4000 },
  });
  expect(h.status).toBe(201);
  expect(h.body.amount).toBe(17);
  return h.body.hold_id;
}
function meter(user: string, extra: Record<string, unknown>) {
  return new UsageMeter(tally.producer, { event_id: id('llm'), user_id: user, asset: 'credits', source_type: 'llm', source_id: id('req'), model: MODEL, ...extra } as any, { wait: true });
}
async function balance(user: string) {
  return (await tally.http('GET', `/v1/users/${user}/balances/credits`)).body;
}
async function consumed(user: string) {
  return (await tally.http('GET', `/v1/users/${user}/transactions`)).body.items.filter((t: any) => t.kind === 'consume');
}

describe('UsageMeter: the stream rule', () => {
  it('abort() with nothing counted settles the hold at its estimate, not 0/0 tokens at min_points', async () => {
    await funded('cut-early');
    const m = meter('cut-early', { hold_id: await hold('cut-early') });
    expect(await m.abort()).toMatchObject({ outcome: 'applied', amount: 17, balance_after: 83 });
    expect(await balance('cut-early')).toMatchObject({ balance: 83, held: 0 });
  });

  it('placeholder chunks reporting zero tokens count as nothing: with a hold, still the estimate', async () => {
    await funded('zeros');
    const m = meter('zeros', { hold_id: await hold('zeros') });
    m.add({ input_tokens: 0, output_tokens: 0, model: MODEL }); // e.g. a message_start before the real usage
    expect(await m.abort()).toMatchObject({ outcome: 'applied', amount: 17 });
  });

  it('abort() bills what was counted when something was (the hold’s rest is released)', async () => {
    await funded('cut-late');
    const m = meter('cut-late', { hold_id: await hold('cut-late') });
    m.add({ input_tokens: 2000 });
    m.add({ output_tokens: 500 });
    expect(await m.abort()).toMatchObject({ outcome: 'applied', amount: 4, balance_after: 96 });
    expect(await balance('cut-late')).toMatchObject({ balance: 96, held: 0 });
    expect((await consumed('cut-late'))[0].usage).toEqual({ model: MODEL, input_tokens: 2000, output_tokens: 500 });
  });

  it('bills the model it was created with: a chunk naming another model never makes the charge unpriceable', async () => {
    await funded('routed');
    const m = meter('routed', { hold_id: await hold('routed') });
    m.add({ input_tokens: 1000, model: 'gpt-4o-mini-2024-07-18' }); // the provider's dated name, unknown to pricing
    m.add({ output_tokens: 1000 });
    expect(m.reportedModel).toBe('gpt-4o-mini-2024-07-18');
    expect(await m.end()).toMatchObject({ outcome: 'applied', amount: 5 });
    expect((await consumed('routed'))[0].usage).toEqual({ model: MODEL, input_tokens: 1000, output_tokens: 1000 });
    // The final report's model does not change it either.
    const f = meter('routed', { policy: 'postpaid' });
    expect(await f.end({ final: { input_tokens: 1000, output_tokens: 0, model: 'something-else' } })).toMatchObject({ outcome: 'applied', amount: 1 });
  });

  it('a meter cannot be made without its model, or with a charge the queue would refuse', () => {
    const base = { event_id: id('llm'), user_id: 'u', asset: 'credits', source_type: 'llm', source_id: 'r', policy: 'postpaid' as const };
    // The model only arriving in chunks is how the old meter sent model-less usage (invalid_payload, hold lapsed).
    expect(() => new UsageMeter(tally.producer, base as any)).toThrow(PayloadError);
    expect(() => new UsageMeter(tally.producer, { ...base, model: '' })).toThrow(/^invalid_payload: model/);
    expect(() => new UsageMeter(tally.producer, { ...base, model: 'x'.repeat(129) })).toThrow(/^invalid_payload: usage.model/);
    expect(() => new UsageMeter(tally.producer, { ...base, model: MODEL, policy: undefined } as any)).toThrow(/^invalid_payload: policy/);
    expect(() => new UsageMeter(tally.producer, { ...base, model: MODEL, event_id: '123' })).toThrow(/^invalid_payload: event_id/);
  });

  it('without a hold, nothing counted is 0/0 tokens of its model, priced at min_points', async () => {
    await funded('no-hold');
    const m = meter('no-hold', { policy: 'postpaid' });
    expect(await m.abort()).toMatchObject({ outcome: 'applied', amount: 1 });
    expect((await consumed('no-hold'))[0].usage).toEqual({ model: MODEL, input_tokens: 0, output_tokens: 0 });
  });

  it('an authoritative final report replaces the chunks, an explicit zero included (no estimate then)', async () => {
    await funded('final');
    const m = meter('final', { hold_id: await hold('final') });
    m.add({ output_tokens: 700 });
    expect(await m.end({ final: { input_tokens: 0, output_tokens: 0 } })).toMatchObject({ outcome: 'applied', amount: 1 });
  });

  it('hostile chunk values are ignored or clamped: the charge stays valid', async () => {
    await funded('hostile', 10);
    const m = meter('hostile', { policy: 'postpaid' });
    for (const v of [Number.NaN, -5, Number.POSITIVE_INFINITY, '12' as unknown as number, null as unknown as number]) m.add({ input_tokens: v, output_tokens: v });
    m.add({ input_tokens: 1.9 }); // floored
    m.add({ output_tokens: Number.MAX_SAFE_INTEGER });
    m.add({ output_tokens: Number.MAX_SAFE_INTEGER });
    // Clamped to the most a charge may report (USAGE_LIMITS.tokens), so the charge stays valid.
    expect(m.counted).toMatchObject({ input_tokens: 1, output_tokens: USAGE_LIMITS.tokens });
    const r: any = await m.end();
    expect(r.outcome).toBe('applied');
    expect(r.amount).toBe(Math.ceil((1 + USAGE_LIMITS.tokens * 4) / 1000));
  });

  it('one charge only: end and abort together, later chunks ignored; a send that failed is retried with the same charge', async () => {
    await funded('once');
    const m = meter('once', { hold_id: await hold('once') });
    m.add({ input_tokens: 1000, output_tokens: 1000 });
    const [a, b] = await Promise.all([m.end(), m.abort()]);
    expect(a).toBe(b);
    m.add({ output_tokens: 100_000 });
    expect(m.counted.output_tokens).toBe(1000);
    expect(await consumed('once')).toHaveLength(1);

    // Redis unreachable for the first send: the caller retries end(); the charge sent is the one decided first.
    await funded('retry');
    let calls = 0;
    const flaky = {
      charge(p: ChargeInput, o?: SendOptions) {
        return ++calls === 1 ? Promise.reject(new Error('connect ECONNREFUSED')) : tally.producer.charge(p, o);
      },
    };
    const r = new UsageMeter(flaky, { event_id: id('llm'), user_id: 'retry', asset: 'credits', source_type: 'llm', source_id: 'q', hold_id: await hold('retry'), model: MODEL }, { wait: true });
    r.add({ input_tokens: 3000 });
    await expect(r.end()).rejects.toThrow(/ECONNREFUSED/);
    r.add({ output_tokens: 9000 }); // after end(): not counted
    expect(await r.end()).toMatchObject({ outcome: 'applied', amount: 3 });
    expect(calls).toBe(2);
    await expectInvariants(world.sql);
  });
});
