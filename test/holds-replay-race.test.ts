import '../src/money/register.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_CONFIG } from '../src/cli/dev.ts';
import { readConfigFile } from '../src/config/store.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

/**
 * Two hold defects: a replay answered by a price check that ran before the lookup (CONTRACT v2 §3: a replay is
 * recognised before any config-dependent check), and first holds of a new account racing on its creation (a NOWAIT
 * lock or a unique violation that surfaced as a 500). Run in both hold modes: group-committed (the default) and one
 * transaction per request (TALLY_HOLD_BATCH_MAX=1).
 */
let world: TestWorld;
const modes: { name: string; env: Record<string, string> }[] = [
  { name: 'group-committed', env: {} },
  { name: 'one transaction per request', env: { TALLY_HOLD_BATCH_MAX: '1' } },
];

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
});
afterAll(async () => {
  await world?.drop();
});

describe.each(modes)('holds ($name)', ({ name, env }) => {
  let a: InProcessTally;
  let b: InProcessTally;
  const tag = name.replace(/\W+/g, '-');
  beforeAll(async () => {
    a = await startTally(world, ['api', 'worker'], env);
    b = await startTally(world, ['api'], env);
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  it('a hold sent again after the pricing of its source_type was removed answers the original hold, not 422', async () => {
    const user = `replay-${tag}`;
    await a.producer.grant({ event_id: `g-${user}`, user_id: user, asset: 'credits', amount: 100, source: 'recharge' }, { wait: true });
    const body = {
      event_id: `h-${user}`,
      user_id: user,
      asset: 'credits',
      source_type: 'llm',
      usage_estimate: { model: 'gpt-4o-mini', input_tokens: 1000, output_tokens: 2250 },
      ttl_seconds: 600,
    };
    const first = await a.http('POST', '/v1/holds', body);
    expect(first).toMatchObject({ status: 201, body: { amount: 10 } });

    const doc = (await readConfigFile(EXAMPLE_CONFIG)) as { pricing: Record<string, Record<string, unknown>> };
    delete doc.pricing.credits!.llm;
    await world.applyConfig(doc);
    try {
      for (const api of [a, b]) {
        const again = await api.http('POST', '/v1/holds', body);
        expect(again).toMatchObject({ status: 201, body: { hold_id: first.body.hold_id, amount: 10, status: 'active' } });
      }
      // Another body under that event_id is still a conflict (recognised before the price check too) …
      const other = await a.http('POST', '/v1/holds', { ...body, ttl_seconds: 60 });
      expect(other).toMatchObject({ status: 409, body: { error: { code: 'idempotency_conflict' } } });
      // … and a new hold for that source_type is refused as before.
      const fresh = await a.http('POST', '/v1/holds', { ...body, event_id: `h2-${user}` });
      expect(fresh).toMatchObject({ status: 422, body: { error: { code: 'unknown_source_type' } } });
      expect((await a.http('GET', `/v1/users/${user}/balances/credits`)).body).toMatchObject({ balance: 100, held: 10, available: 90 });
    } finally {
      await world.applyExampleConfig();
    }
  });

  it('50 concurrent first holds of a user the ledger has never seen, over two API processes, never answer 500', async () => {
    for (let round = 0; round < 3; round++) {
      const user = `new-${tag}-${round}`;
      // A grant of the same new user racing through the worker creates the account too.
      const grant = a.producer.grant({ event_id: `g-${user}`, user_id: user, asset: 'credits', amount: 20, source: 'recharge' }, { wait: true });
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          (i % 2 === 0 ? a : b).http('POST', '/v1/holds', { event_id: `h-${user}-${i}`, user_id: user, asset: 'credits', source_type: 'llm', amount: 1, ttl_seconds: 600 }),
        ),
      );
      await grant;
      const statuses = answers.map((r) => r.status);
      expect(statuses.filter((s) => s !== 201 && s !== 402), JSON.stringify(answers.find((r) => r.status >= 500)?.body)).toEqual([]);
      // Never over-held: at most the 20 the grant brought.
      const placed = statuses.filter((s) => s === 201).length;
      expect(placed).toBeLessThanOrEqual(20);
      const balance = (await a.http('GET', `/v1/users/${user}/balances/credits`)).body;
      expect(balance).toMatchObject({ balance: 20, held: placed, available: 20 - placed });
      const [accounts] = await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM accounts WHERE user_id = ${user}`;
      expect(accounts!.n).toBe(1);
    }
    await expectInvariants(world.sql);
  });
});
