import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../src/db/client.ts';
import { dbNow } from '../src/db/clock.ts';
import { ensureDatabase, migrate } from '../src/db/migrate.ts';
import { readBalance } from '../src/ledger/read.ts';
import { runLedgerTransaction } from '../src/ledger/transaction.ts';
import { ConfigCache } from '../src/config/store.ts';
import { PG_BASE, createWorld, uniqueName, type TestWorld } from './helpers/env.ts';
import type { GrantCommand } from '../src/ledger/commands.ts';

describe('the drivable business clock (tally_now)', () => {
  let world: TestWorld;
  beforeAll(async () => {
    world = await createWorld();
    await world.applyExampleConfig();
  });
  afterAll(() => world.drop());

  it('moves every process of a test world at once, without sleeping', async () => {
    const wall = Date.now();
    const before = await dbNow(world.sql);
    expect(Math.abs(before.getTime() - wall)).toBeLessThan(5_000);
    const moved = await world.clock.advance(3 * 86_400_000);
    expect(moved.getTime() - before.getTime()).toBeGreaterThanOrEqual(3 * 86_400_000);
    // A separate pool (another process, in effect) sees the same clock.
    const other = createDb(`${PG_BASE}/${world.dbName}`, { max: 1 });
    try {
      expect(Math.abs((await dbNow(other)).getTime() - moved.getTime())).toBeLessThan(5_000);
    } finally {
      await other.end();
    }
    await world.clock.set(new Date(wall));
    expect(Math.abs(await world.clock.offset())).toBeLessThan(5_000);
  });

  it('lets a grant expire by moving time: the balance drops the moment the clock passes expires_at', async () => {
    const at = await world.clock.now();
    const grant: GrantCommand = {
      op: 'grant', queue: 'grants', eventId: 'clock-g1', jobId: 'clock-g1', payloadHash: 'h', payload: {},
      userId: 'clock-u', asset: 'points', amount: 100n, source: 'gift', sourceId: null,
      expiresAt: new Date(at.getTime() + 3_600_000).toISOString(), description: null,
    };
    const [outcome] = await runLedgerTransaction(world.sql, new ConfigCache(), [grant]);
    expect(outcome).toMatchObject({ ok: true, result: { outcome: 'applied' } });
    expect((await readBalance(world.sql, 'clock-u', 'points')).balance).toBe(100);
    await world.clock.advance(3_600_000 - 60_000);
    expect((await readBalance(world.sql, 'clock-u', 'points')).balance).toBe(100);
    await world.clock.advance(120_000);
    expect((await readBalance(world.sql, 'clock-u', 'points')).balance).toBe(0);
  });
});

describe('a production database', () => {
  const dbName = uniqueName('tally_prodclock');
  const url = `${PG_BASE}/${dbName}`;
  afterAll(async () => {
    const admin = postgres(`${PG_BASE}/postgres`, { max: 1, onnotice: () => {} });
    await admin`DROP DATABASE IF EXISTS ${admin(dbName)} WITH (FORCE)`.catch(() => {});
    await admin.end();
  });

  it('refuses to move its clock: an offset needs the test-database mark', async () => {
    await ensureDatabase(url);
    const sql = createDb(url, { max: 1 });
    try {
      await migrate(sql);
      await expect(sql`UPDATE tally_clock SET offset_ms = 1000`).rejects.toThrow(/test databases only/);
      await expect(sql`INSERT INTO tally_clock (only_row, offset_ms) VALUES (false, 5)`).rejects.toThrow();
      await expect(sql`DELETE FROM tally_clock`).rejects.toThrow(/append-only/);
      const [row] = await sql<{ offset_ms: bigint }[]>`SELECT offset_ms FROM tally_clock`;
      expect(row!.offset_ms).toBe(0n);
    } finally {
      await sql.end();
    }
  });
});
