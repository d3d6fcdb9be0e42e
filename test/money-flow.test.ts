import '../src/modules.ts';
import fc from 'fast-check';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MIGRATIONS_DIR } from '../src/db/migrate.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigCache } from '../src/config/store.ts';
import { runLedger } from '../src/ledger/transaction.ts';
import { runExpire } from '../src/maintenance/expire.ts';
import { placeHold } from '../src/money/holds.ts';
import { compactMoneyFlow, readMoneyFlow, type MoneyFlow } from '../src/money-flow/rollup.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { chargeCmd, grantCmd, refundCmd, type LedgerCommand } from './helpers/ledger-commands.ts';
import { startTally } from './helpers/tally.ts';

/**
 * The money-flow rollup behind /metrics: per-transaction deltas, compacted by maintenance, always equal to what
 * the ledger says — whatever order transactions and compactions commit in.
 */
let world: TestWorld;
const configs = new ConfigCache();

beforeAll(async () => {
  world = await createWorld();
  await world.applyConfig({
    assets: { points: { default_expiry_days: 180 }, credits: { default_expiry_days: null } },
    pricing: { credits: { llm: { mode: 'fixed', points: 3 } } },
  });
});
afterAll(async () => {
  await world?.drop();
});

/** The truth, by scanning: entries per kind, balances and debts of the accounts, active holds. */
async function fromLedger(): Promise<MoneyFlow[]> {
  const rows = await world.sql<{ asset: string; granted: string; consumed: string; refunded: string; expired: string; outstanding: string; debt: string; held: string }[]>`
    SELECT a.asset,
      coalesce((SELECT sum(amount) FROM ledger_entries e WHERE e.asset = a.asset AND kind = 'grant'), 0)::text AS granted,
      coalesce((SELECT -sum(amount) FROM ledger_entries e WHERE e.asset = a.asset AND kind = 'consume'), 0)::text AS consumed,
      coalesce((SELECT sum(amount) FROM ledger_entries e WHERE e.asset = a.asset AND kind = 'refund'), 0)::text AS refunded,
      coalesce((SELECT -sum(amount) FROM ledger_entries e WHERE e.asset = a.asset AND kind = 'expire'), 0)::text AS expired,
      sum(greatest(a.balance, 0))::text AS outstanding, sum(a.debt)::text AS debt,
      coalesce((SELECT sum(amount) FROM holds h WHERE h.asset = a.asset AND status = 'active' AND expires_at > tally_now()), 0)::text AS held
    FROM accounts a GROUP BY a.asset HAVING count(*) FILTER (WHERE a.version > 0) > 0 ORDER BY a.asset`;
  return rows.map((r) => ({
    asset: r.asset,
    granted: Number(r.granted),
    consumed: Number(r.consumed),
    refunded: Number(r.refunded),
    expired: Number(r.expired),
    outstanding: Number(r.outstanding),
    debt: Number(r.debt),
    held: Number(r.held),
  }));
}
/** As the workers do: a transaction that met a transient lock fault (NOWAIT on a just-created account) runs again. */
async function applyRetrying(cmds: LedgerCommand[]): Promise<void> {
  for (;;) {
    try {
      await runLedger(world.sql, configs, cmds);
      return;
    } catch (err) {
      if (!['55P03', '40P01'].includes((err as { code?: string }).code ?? '')) throw err;
    }
  }
}
const sorted = (f: MoneyFlow[]) => [...f].sort((a, b) => a.asset.localeCompare(b.asset));

describe('money-flow rollup', () => {
  it('equals the ledger after random transactions racing with compactions (property)', async () => {
    let k = 0;
    const op = fc.oneof(
      fc.record({ t: fc.constant('grant' as const), user: fc.integer({ min: 0, max: 5 }), asset: fc.constantFrom('points', 'credits'), amount: fc.integer({ min: 1, max: 200 }), expiresInS: fc.option(fc.integer({ min: 1, max: 120 }), { nil: undefined }) }),
      fc.record({ t: fc.constant('charge' as const), user: fc.integer({ min: 0, max: 5 }), asset: fc.constantFrom('points', 'credits'), amount: fc.integer({ min: 1, max: 150 }), guarded: fc.boolean() }),
      fc.record({ t: fc.constant('refund' as const), back: fc.integer({ min: 1, max: 5 }), amount: fc.integer({ min: 1, max: 50 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: 90_000 }), async (batches, advanceMs) => {
        const round = ++k;
        const charges: string[] = [];
        const now = (await world.clock.now()).getTime();
        const txs = batches.map((ops) =>
          ops.map((o): LedgerCommand => {
            const id = `p${round}-${++k}`;
            if (o.t === 'grant') {
              return grantCmd(id, `u${o.user}`, o.amount, { asset: o.asset, expiresAt: o.expiresInS === undefined ? null : new Date(now + o.expiresInS * 1000).toISOString() });
            }
            if (o.t === 'charge') {
              charges.push(id);
              return chargeCmd(id, `u${o.user}`, o.amount, { asset: o.asset, policy: o.guarded ? 'guarded' : 'postpaid' });
            }
            const target = charges.at(-o.back);
            return target ? refundCmd(id, target, o.amount) : grantCmd(id, 'u0', 1);
          }),
        );
        // Transactions (on several connections) and compactions commit in whatever order they happen to.
        await Promise.all([
          ...txs.map((cmds) => applyRetrying(cmds)),
          compactMoneyFlow(world.sql),
          compactMoneyFlow(world.sql),
        ]);
        await world.clock.advance(advanceMs);
        await Promise.all([runExpire(world.sql, configs), compactMoneyFlow(world.sql)]);
        expect(sorted(await readMoneyFlow(world.sql))).toEqual(await fromLedger());
      }),
      { numRuns: 15 },
    );
    await compactMoneyFlow(world.sql);
    expect((await world.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM money_flow_deltas`)[0]!.n).toBe(0);
    expect(sorted(await readMoneyFlow(world.sql))).toEqual(await fromLedger());
    await expectInvariants(world.sql);
  });

  it('is backfilled by migration 041 from a ledger written before it', async () => {
    const migration = await readFile(join(MIGRATIONS_DIR, '041_money_flow.sql'), 'utf8');
    await world.sql.begin(async (tx) => {
      await tx`DELETE FROM money_flow_totals`;
      await tx`DELETE FROM money_flow_deltas`;
      await tx.unsafe(migration.slice(migration.indexOf('INSERT INTO money_flow_totals')));
    });
    expect(sorted(await readMoneyFlow(world.sql))).toEqual(await fromLedger());
  });

  it('counts active holds as held, and is on /metrics with the families declared', async () => {
    await runLedger(world.sql, configs, [grantCmd('held-g', 'holder', 100, { asset: 'credits' })]);
    const hold = await placeHold(world.sql, configs, { event_id: 'held-h', user_id: 'holder', asset: 'credits', source_type: 'llm', amount: 40, ttl_seconds: 600 });
    expect(hold.kind).toBe('created');
    const credits = (await readMoneyFlow(world.sql)).find((f) => f.asset === 'credits')!;
    expect(credits.held).toBe(40);
    expect(sorted(await readMoneyFlow(world.sql))).toEqual(await fromLedger());

    const tally = await startTally(world, ['api'], { TALLY_METRICS_CACHE_MS: '0' });
    try {
      const text = await (await fetch(`${tally.base}/metrics`)).text();
      for (const [name, type] of [
        ['tally_money_granted_total', 'counter'],
        ['tally_money_consumed_total', 'counter'],
        ['tally_money_refunded_total', 'counter'],
        ['tally_money_expired_total', 'counter'],
        ['tally_money_outstanding', 'gauge'],
        ['tally_money_debt', 'gauge'],
        ['tally_money_held', 'gauge'],
      ]) {
        expect(text).toContain(`# TYPE ${name} ${type}`);
      }
      const sample = (name: string) => Number(new RegExp(`^${name}\\{asset="credits"\\} (\\S+)$`, 'm').exec(text)?.[1]);
      expect(sample('tally_money_held')).toBe(40);
      expect(sample('tally_money_granted_total')).toBe(credits.granted);
      expect(sample('tally_money_outstanding')).toBe(credits.outstanding);
      expect(text).toMatch(/tally_scrape_error\{part="money_flow"\} 0/);
    } finally {
      await tally.stop();
    }
  });
});
