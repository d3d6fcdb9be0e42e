import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { TallyProducer } from '../src/producers/index.ts';
import { PG_BASE, REDIS_URL, createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { startProxy, type FaultProxy } from './helpers/proxy.ts';
import { spawnTally, startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

/**
 * Batch jobs under faults: a worker killed in the middle of a 1000-event batch, PostgreSQL cut while one runs, a
 * shutdown while it waits out the outage. Every member takes effect exactly once; a retried job runs only what it
 * had not decided.
 */
const worlds: TestWorld[] = [];
const children: ChildProcess[] = [];
const producers: TallyProducer[] = [];
let tally: InProcessTally | undefined;
let proxy: FaultProxy | undefined;

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await tally?.stop();
  tally = undefined;
  await proxy?.close();
  proxy = undefined;
  for (const p of producers.splice(0)) await p.close();
});
afterAll(async () => {
  for (const w of worlds) await w.drop();
});

async function world(extra: Record<string, string> = {}) {
  const w = await createWorld(extra);
  worlds.push(w);
  await w.applyExampleConfig();
  return w;
}

function producerFor(w: TestWorld) {
  const p = new TallyProducer({ redis: REDIS_URL, prefix: w.env.TALLY_PREFIX });
  producers.push(p);
  return p;
}

function workerProcess(w: TestWorld): ChildProcess {
  const child = spawnTally(w, ['start', '--role', 'worker']);
  child.stderr?.on('data', () => {});
  child.stdout?.on('data', () => {});
  children.push(child);
  return child;
}

const USERS = 10;
/** 1000 post-paid charges of 1–3 points over USERS users, and what each user ends with. */
function plan(prefix: string) {
  const charges = Array.from({ length: 1000 }, (_, i) => ({
    type: 'charge', event_id: `${prefix}-c${i}`, user_id: `${prefix}-u${i % USERS}`, asset: 'points', source_type: 'script', source_id: `s${i}`,
    amount: 1 + (i % 3), policy: 'postpaid',
  }));
  const expected = new Map<string, number>();
  for (const c of charges) expected.set(c.user_id, (expected.get(c.user_id) ?? 0) - c.amount);
  return { charges, expected };
}

async function decided(w: TestWorld, prefix: string): Promise<number> {
  const [row] = await w.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM processed_events WHERE event_id LIKE ${`${prefix}-%`}`;
  return row!.n;
}

async function expectExactlyOnce(w: TestWorld, prefix: string, expected: Map<string, number>) {
  const [once] = await w.sql<{ decided: number; entries: number; twice: number }[]>`
    SELECT (SELECT count(*)::int FROM processed_events WHERE event_id LIKE ${`${prefix}-%`}) AS decided,
           (SELECT count(*)::int FROM ledger_entries WHERE event_id LIKE ${`${prefix}-%`}) AS entries,
           (SELECT count(*)::int FROM (SELECT event_id FROM ledger_entries WHERE event_id LIKE ${`${prefix}-%`}
              GROUP BY event_id HAVING count(*) > 1) d) AS twice`;
  expect(once).toEqual({ decided: 1000, entries: 1000, twice: 0 });
  const rows = await w.sql<{ user_id: string; balance: string }[]>`SELECT user_id, balance FROM accounts WHERE user_id LIKE ${`${prefix}-%`}`;
  expect(new Map(rows.map((r) => [r.user_id, Number(r.balance)]))).toEqual(expected);
  await expectInvariants(w.sql);
}

describe('a batch job under faults', () => {
  it('a worker SIGKILLed in the middle of a 1000-event batch: the job is taken over and every member applies once', async () => {
    // Small group commits: the batch is ~50 transactions, so the kill lands between them.
    const w = await world({ TALLY_LOCK_DURATION_MS: '2000', TALLY_BATCH_MAX: '20', TALLY_BATCH_PARALLEL: '1' });
    const producer = producerFor(w);
    const { charges, expected } = plan('kill');
    const victim = workerProcess(w);
    const [job] = await producer.bulk('charges', charges);
    const at = await waitFor('part of the batch applied', async () => {
      const n = await decided(w, 'kill');
      return n >= 100 ? n : undefined;
    }, 60_000, 5);
    victim.kill('SIGKILL');
    await new Promise((r) => victim.once('exit', r));
    const before = await decided(w, 'kill');
    expect(before).toBeGreaterThanOrEqual(at);
    expect(before).toBeLessThan(1000); // killed mid-way
    workerProcess(w);
    const out = (await producer.result('charges', job!, 90_000)) as { results: { outcome: string; original_outcome?: string }[] };
    // Members decided before the kill answer as replays of what they were; the rest are applied now.
    expect(out.results).toHaveLength(1000);
    for (const r of out.results) expect(r.outcome === 'applied' || (r.outcome === 'noop_duplicate' && r.original_outcome === 'applied')).toBe(true);
    expect(out.results.filter((r) => r.outcome === 'noop_duplicate').length).toBeGreaterThanOrEqual(before);
    await expectExactlyOnce(w, 'kill', expected);
  }, 180_000);

  it('PostgreSQL cut mid-batch, then the worker shut down: the retry runs only the undecided members and answers every original result', async () => {
    const w = await world({ TALLY_BATCH_MAX: '20', TALLY_BATCH_PARALLEL: '1' });
    proxy = await startProxy(Number(new URL(PG_BASE).port || 5432));
    const viaProxy = { DATABASE_URL: `postgres://${new URL(PG_BASE).host.split(':')[0]}:${proxy.port}/${w.dbName}` };
    tally = await startTally(w, ['worker'], viaProxy);
    const producer = producerFor(w);
    const { charges, expected } = plan('cut');
    const [job] = await producer.bulk('charges', charges);
    await waitFor('part of the batch applied', async () => ((await decided(w, 'cut')) >= 100 ? true : undefined), 60_000, 5);
    await proxy.cut();
    const applied = await decided(w, 'cut');
    expect(applied).toBeLessThan(1000);
    await tally.stop(); // the batcher gives up on the outage: the job goes back, its decided members remembered
    tally = undefined;
    const back = (await producer.queue('charges').getJob(job!.id!))!;
    expect(await back.getState()).toBe('delayed');
    const remembered = (back.progress as { batch_results: ({ outcome: string } | null)[] }).batch_results;
    expect(remembered.filter((r) => r !== null).length).toBe(applied);
    expect(back.attemptsMade).toBe(0); // a transient fault uses no attempt

    await proxy.restore();
    tally = await startTally(w, ['worker'], viaProxy);
    const out = (await producer.result('charges', job!, 90_000)) as { results: { outcome: string }[] };
    expect(new Set(out.results.map((r) => r.outcome))).toEqual(new Set(['applied'])); // the originals, not noop_duplicate
    await expectExactlyOnce(w, 'cut', expected);
  }, 180_000);
});
