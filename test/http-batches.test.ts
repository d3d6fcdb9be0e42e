import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../src/client/index.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

type Batch = components['schemas']['Batch'];
let world: TestWorld;
let tally: InProcessTally;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world, ['api', 'worker']);
  const now = Date.now();
  const day = 86_400_000;
  const grants = [];
  for (let i = 0; i < 30; i++) {
    // Ties on expires_at, never-expiring ones, default expiries computed in SQL (microsecond precision), an expired one.
    const expires_at = i % 5 === 0 ? null : i % 5 === 1 ? undefined : new Date(now + (1 + (i % 3)) * day).toISOString();
    grants.push({ event_id: `pb-${i}`, user_id: 'pager', asset: i % 4 === 0 ? 'credits' : 'points', amount: 1 + i, source: 'gift', ...(expires_at === undefined ? {} : { expires_at }) });
  }
  grants.push({ event_id: 'pb-expired', user_id: 'pager', asset: 'points', amount: 9, source: 'gift', expires_at: new Date(now - day).toISOString() });
  for (const g of grants) await tally.producer.grant(g, { wait: true });
});
afterAll(async () => {
  await tally?.stop();
  await world?.drop();
});

async function pages(limit: number, asset?: string): Promise<{ items: Batch[]; pages: number }> {
  const items: Batch[] = [];
  let cursor: string | undefined;
  let n = 0;
  do {
    const { data, error } = await tally.client.GET('/v1/users/{user_id}/batches', { params: { path: { user_id: 'pager' }, query: { limit, cursor, asset } } });
    expect(error).toBeUndefined();
    expect(data!.items.length).toBeLessThanOrEqual(limit);
    items.push(...data!.items);
    cursor = data!.next_cursor ?? undefined;
    n++;
  } while (cursor && n < 100);
  return { items, pages: n };
}

/** Burn order: per asset, the batch that expires first, never-expiring last, then by id. */
function burnOrder(a: Batch, b: Batch): number {
  const exp = (x: Batch) => (x.expires_at === null ? Infinity : Date.parse(x.expires_at));
  return a.asset.localeCompare(b.asset) || exp(a) - exp(b) || (BigInt(a.batch_id) < BigInt(b.batch_id) ? -1 : 1);
}

describe('GET /v1/users/:user_id/batches is paginated (limit + cursor)', () => {
  it('one page by default when everything fits; the expired batch is not listed', async () => {
    const { data } = await tally.client.GET('/v1/users/{user_id}/batches', { params: { path: { user_id: 'pager' } } });
    expect(data!.items).toHaveLength(30);
    expect(data!.next_cursor).toBeNull();
    expect([...data!.items].sort(burnOrder)).toEqual(data!.items);
  });

  it.each([1, 4, 7, 29, 30])('pages of %i walk every batch once, in burn order', async (limit) => {
    const all = (await tally.client.GET('/v1/users/{user_id}/batches', { params: { path: { user_id: 'pager' }, query: { limit: 500 } } })).data!.items;
    const walked = await pages(limit);
    expect(walked.items).toEqual(all);
    expect(walked.pages).toBe(Math.ceil(30 / limit)); // the last page says so itself: no empty page after it
  });

  it('the asset filter pages too', async () => {
    const credits = await pages(2, 'credits');
    expect(credits.items.map((b) => b.asset)).toEqual(Array(8).fill('credits'));
  });
});
