import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigCache } from '../src/config/store.ts';
import { runLedger } from '../src/ledger/transaction.ts';
import { runExpire } from '../src/maintenance/expire.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { chargeCmd, grantCmd } from './helpers/ledger-commands.ts';
import { spawnTally } from './helpers/tally.ts';

/**
 * expiring_soon (CONTRACT §6): decided by the expire maintenance on the business clock; a batch with at least
 * `min_amount` left that expires within `within_days` gets one alert, ever — across repeated and racing sweeps.
 */
let world: TestWorld;
const configs = new ConfigCache();
const DAY = 86_400_000;

beforeAll(async () => {
  world = await createWorld();
  await world.applyConfig({
    assets: { points: { default_expiry_days: 180 }, credits: { default_expiry_days: null } },
    alerts: { expiring_soon: [{ asset: 'points', within_days: 7, min_amount: 10 }] },
  });
});
afterAll(async () => {
  await world?.drop();
});

interface Alert {
  user_id: string;
  data: { kind: string; asset: string; batch_id: string; amount: number; expires_at: string; within_days: number };
}
const alertsOf = (user: string) =>
  world.sql<Alert[]>`SELECT user_id, data FROM outbox WHERE type = 'alert' AND user_id = ${user} ORDER BY outbox_id`;
const at = async (ms: number) => new Date((await world.clock.now()).getTime() + ms).toISOString();
const batchOf = async (user: string, amount: number) =>
  String((await world.sql<{ batch_id: bigint }[]>`SELECT b.batch_id FROM batches b JOIN accounts a USING (account_id) WHERE a.user_id = ${user} AND b.amount = ${amount}`)[0]!.batch_id);

describe('expiring_soon', () => {
  it('alerts a batch once it comes within the window, once, with its batch id, what it holds and when it expires', async () => {
    const u = 'eve';
    const expiresAt = await at(9 * DAY);
    await runLedger(world.sql, configs, [grantCmd('eve-g1', u, 50, { expiresAt })]);
    await runExpire(world.sql, configs); // 9 days out: not yet
    expect(await alertsOf(u)).toEqual([]);
    await world.clock.advance(2 * DAY + 60_000); // now 7 days minus a minute before expiry
    const first = await runExpire(world.sql, configs);
    expect(first.expiring_soon_alerts).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 3; i++) await runExpire(world.sql, configs);
    await world.clock.advance(3 * DAY);
    await runExpire(world.sql, configs);
    const alerts = await alertsOf(u);
    expect(alerts.map((a) => a.data)).toEqual([
      { kind: 'expiring_soon', asset: 'points', batch_id: await batchOf(u, 50), amount: 50, expires_at: new Date(expiresAt).toISOString(), within_days: 7 },
    ]);
  });

  it('skips batches holding less than min_amount, never-expiring ones, other assets, and burned-out ones', async () => {
    const soon = await at(DAY);
    await runLedger(world.sql, configs, [
      grantCmd('sk-small', 'sam', 9, { expiresAt: soon }),
      grantCmd('sk-never', 'sam', 500, { expiresAt: null }),
      grantCmd('sk-credits', 'sam', 500, { asset: 'credits', expiresAt: soon }),
      grantCmd('sk-burned', 'bob', 40, { expiresAt: soon }),
      chargeCmd('sk-burn', 'bob', 35), // 5 left: below min_amount now
    ]);
    await runExpire(world.sql, configs);
    expect(await alertsOf('sam')).toEqual([]);
    expect(await alertsOf('bob')).toEqual([]);
  });

  it('racing sweeps alert each batch once', async () => {
    const soon = await at(3 * DAY);
    const users = Array.from({ length: 30 }, (_, i) => `race-${i}`);
    await runLedger(world.sql, configs, users.map((u) => grantCmd(`race-g-${u}`, u, 20, { expiresAt: soon })));
    const runs = await Promise.all(Array.from({ length: 4 }, () => runExpire(world.sql, configs)));
    expect(runs.reduce((s, r) => s + r.expiring_soon_alerts, 0)).toBe(30);
    const [row] = await world.sql<{ n: number; batches: number }[]>`
      SELECT count(*)::int AS n, count(DISTINCT data->>'batch_id')::int AS batches FROM outbox
      WHERE type = 'alert' AND data->>'kind' = 'expiring_soon' AND user_id LIKE 'race-%'`;
    expect(row).toEqual({ n: 30, batches: 30 });
  });

  it('runs from `tally maintenance expire` too', async () => {
    await runLedger(world.sql, configs, [grantCmd('cli-g', 'cli', 15, { expiresAt: await at(2 * DAY) })]);
    const child = spawnTally(world, ['maintenance', 'expire']);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', () => {});
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ task: 'expire', expiring_soon_alerts: 1 });
    expect((await alertsOf('cli')).map((a) => a.data.amount)).toEqual([15]);
  });
});
