import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_CONFIG } from '../src/cli/dev.ts';
import { ConfigCache } from '../src/config/store.ts';
import { applyLedgerCommands } from '../src/ledger/apply.ts';
import type { LedgerCommand } from '../src/ledger/commands.ts';
import { readBalance } from '../src/ledger/read.ts';
import { runLedger } from '../src/ledger/transaction.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { expectInvariants } from './helpers/invariants.ts';
import { chargeCmd, grantCmd, outcomesOf, refundCmd, rewardCmd } from './helpers/ledger-commands.ts';

/**
 * Money never leaks at the edges (issue 9): expired batches in any transaction, replays after config changes,
 * refunds of debt-paid charges, rewards without a version, amounts at 2^53. Through the ledger transaction the
 * workers run (runLedger), or — where the exact instant matters — applyLedgerCommands with a chosen clock.
 */
let world: TestWorld;
let example: any;
const configs = new ConfigCache();
const MINUTE = 60_000;
const DAY = 86_400_000;
let n = 0;
const id = (p: string) => `${p}-${++n}`;

beforeAll(async () => {
  world = await createWorld();
  example = parseYaml(await readFile(EXAMPLE_CONFIG, 'utf8'));
  await world.applyConfig(example);
});
afterAll(async () => {
  await world?.drop();
});

async function run(cmds: LedgerCommand[]) {
  return (await runLedger(world.sql, configs, cmds)).outcomes;
}
/** One transaction whose clock reads exactly `now`. */
async function runAt(now: Date, cmds: LedgerCommand[]) {
  const { doc } = await configs.get(world.sql);
  return (await world.sql.begin((tx) => applyLedgerCommands(tx, cmds, { config: doc, now }))).outcomes;
}
const result = (o: { ok: boolean; result?: unknown }) => (o as { result: Record<string, unknown> }).result;
async function balance(user: string, asset = 'points') {
  return readBalance(world.sql, user, asset);
}
async function batches(user: string) {
  return world.sql<{ amount: bigint; remaining: bigint; expires_at: Date | null; expired: boolean; source: string }[]>`
    SELECT b.amount, b.remaining, b.expires_at, b.expired, b.source FROM batches b JOIN accounts a USING (account_id)
    WHERE a.user_id = ${user} ORDER BY b.batch_id`;
}
const iso = (ms: number) => new Date(ms).toISOString();

describe('no batch is used at or after its expiry, in any transaction', () => {
  it('a grant already expired, then a guarded charge in the same transaction: refused, the grant expires at once', async () => {
    const now = (await world.clock.now()).getTime();
    const out = await run([grantCmd(id('g'), 'exp1', 100, { expiresAt: iso(now - MINUTE) }), chargeCmd(id('c'), 'exp1', 60, { policy: 'guarded' })]);
    expect(outcomesOf(out)).toEqual(['applied', 'rejected_insufficient']);
    expect(result(out[0]!)).toMatchObject({ amount: 100, balance_after: 0, expired: 100 });
    expect(await balance('exp1')).toMatchObject({ balance: 0, total_granted: 100, total_consumed: 0, total_expired: 100 });
    expect(await batches('exp1')).toEqual([expect.objectContaining({ amount: 100n, remaining: 100n, expired: true })]);
    await expectInvariants(world.sql);
  });

  it('a post-paid charge next to an expired grant goes into debt instead of burning it', async () => {
    const now = (await world.clock.now()).getTime();
    const out = await run([grantCmd(id('g'), 'exp2', 100, { expiresAt: iso(now - MINUTE) }), chargeCmd(id('c'), 'exp2', 60)]);
    expect(outcomesOf(out)).toEqual(['applied', 'applied']);
    expect(result(out[1]!)).toMatchObject({ balance_before: 0, balance_after: -60 });
    expect(await balance('exp2')).toMatchObject({ balance: -60, overdrawn: true, total_expired: 100, total_consumed: 60 });
    await expectInvariants(world.sql);
  });

  it('an expired grant pays no debt, in the same transaction as the charge or a later one', async () => {
    const now = (await world.clock.now()).getTime();
    const same = await run([chargeCmd(id('c'), 'exp3', 50), grantCmd(id('g'), 'exp3', 80, { expiresAt: iso(now - MINUTE) })]);
    expect(outcomesOf(same)).toEqual(['applied', 'applied']);
    expect(result(same[1]!)).toMatchObject({ balance_after: -50, expired: 80 });
    const later = await run([grantCmd(id('g'), 'exp3', 30, { expiresAt: iso(now - 1) })]);
    expect(result(later[0]!)).toMatchObject({ balance_after: -50, expired: 30 });
    expect(await balance('exp3')).toMatchObject({ balance: -50, overdrawn: true, total_granted: 110, total_expired: 110 });
    await expectInvariants(world.sql);
  });

  it('expiry at the boundary millisecond: expires_at = the clock is expired; one ms later is still live', async () => {
    const t = Math.floor((await world.clock.now()).getTime() / 1000) * 1000 + 5 * MINUTE;
    const atT = await runAt(new Date(t), [
      grantCmd(id('g'), 'edge', 10, { expiresAt: iso(t) }),
      grantCmd(id('g'), 'edge', 7, { expiresAt: iso(t + 1) }),
      chargeCmd(id('c'), 'edge', 8, { policy: 'guarded' }),
      chargeCmd(id('c'), 'edge', 7, { policy: 'guarded' }),
    ]);
    expect(outcomesOf(atT)).toEqual(['applied', 'applied', 'rejected_insufficient', 'applied']);
    expect(result(atT[0]!)).toMatchObject({ expired: 10 });
    // The 7-point batch expires at t + 1: a transaction whose clock reads exactly that may not burn it.
    await runAt(new Date(t), [grantCmd(id('g'), 'edge2', 5, { expiresAt: iso(t + 1) })]);
    const atT1 = await runAt(new Date(t + 1), [chargeCmd(id('c'), 'edge2', 1, { policy: 'guarded' }), chargeCmd(id('c'), 'edge2', 1)]);
    expect(outcomesOf(atT1)).toEqual(['rejected_insufficient', 'applied']);
    expect(result(atT1[1]!)).toMatchObject({ balance_before: 0, balance_after: -1 });
    await expectInvariants(world.sql);
  });
});

describe('a replay is recognised before any config-dependent check', () => {
  it('a priced charge replayed after its pricing, asset and reward rule are gone answers noop_duplicate', async () => {
    const usage = { seconds: 31 };
    const charge = chargeCmd(id('c'), 'replayer', null, { sourceType: 'tts', usage });
    const reward = rewardCmd(id('rw'), 'replayer');
    const first = await run([grantCmd(id('g'), 'replayer', 100), charge, reward]);
    expect(outcomesOf(first)).toEqual(['applied', 'applied', 'applied']);
    const changed = structuredClone(example);
    delete changed.pricing.points.tts;
    delete changed.rewards['forum.post.liked'];
    await world.applyConfig(changed);
    try {
      // The same payloads, enqueued again later (a new job: a later default occurred_at, the new config in force).
      const again = await run([{ ...charge, occurredAt: new Date() }, reward]);
      expect(outcomesOf(again)).toEqual(['noop_duplicate', 'noop_duplicate']);
      expect(result(again[0]!)).toMatchObject({ original_outcome: 'applied', amount: 4, transaction_id: result(first[1]!).transaction_id });
      const reversioned = structuredClone(example);
      reversioned.rewards['forum.post.liked'].versions = ['2'];
      delete reversioned.assets.points;
      delete reversioned.pricing.points;
      for (const l of reversioned.affinity.levels) l.rewards = [];
      await world.applyConfig(reversioned);
      const third = await run([{ ...charge, occurredAt: new Date() }, reward]);
      expect(outcomesOf(third)).toEqual(['noop_duplicate', 'noop_duplicate']);
    } finally {
      await world.applyConfig(example);
    }
    expect(await world.sql`SELECT 1 FROM dead_letters WHERE event_id IN (${charge.eventId}, ${reward.eventId})`).toHaveLength(0);
  });

  it('a refund replayed when its charge can no longer be looked up answers noop_duplicate', async () => {
    const c = chargeCmd(id('c'), 'refreplay', 10);
    const r = refundCmd(id('rf'), c.eventId, 4);
    await run([grantCmd(id('g'), 'refreplay', 20), c]);
    expect(outcomesOf(await run([r]))).toEqual(['applied']);
    await world.sql`DELETE FROM processed_events WHERE queue = 'charges' AND event_id = ${c.eventId}`;
    expect(outcomesOf(await run([r]))).toEqual(['noop_duplicate']);
  });
});

describe('refunds of charges whose debt was paid', () => {
  it('the issue: debt paid by an expiring grant comes back to that grant, with its expiry — no never-expiring batch', async () => {
    const now = (await world.clock.now()).getTime();
    const c = chargeCmd(id('c'), 'debtor', 50);
    await run([c]);
    await run([grantCmd(id('g'), 'debtor', 80, { expiresAt: iso(now + 3 * DAY) })]);
    expect(await batches('debtor')).toEqual([expect.objectContaining({ amount: 80n, remaining: 30n })]);
    const [r] = await run([refundCmd(id('rf'), c.eventId)]);
    expect(result(r!)).toMatchObject({ outcome: 'applied', amount: 50, requested: 50, balance_before: 30, balance_after: 80 });
    const after = await batches('debtor');
    expect(after).toEqual([expect.objectContaining({ amount: 80n, remaining: 80n, expires_at: new Date(now + 3 * DAY), source: 'recharge' })]);
    // When that batch expires, all of it goes: nothing outlives it.
    await world.clock.advance(3 * DAY);
    expect(await balance('debtor')).toMatchObject({ balance: 0, total_expired: 80 });
    await world.clock.advance(-3 * DAY);
    await expectInvariants(world.sql);
  });

  it('a refund while the debt is still unpaid lowers the debt, partly or wholly', async () => {
    const c = chargeCmd(id('c'), 'unpaid', 50);
    await run([c]);
    expect(result((await run([refundCmd(id('rf'), c.eventId, 20)]))[0]!)).toMatchObject({ amount: 20, balance_after: -30 });
    expect(await balance('unpaid')).toMatchObject({ balance: -30, overdrawn: true, total_consumed: 30 });
    expect(result((await run([refundCmd(id('rf'), c.eventId)]))[0]!)).toMatchObject({ amount: 30, balance_after: 0 });
    expect(await balance('unpaid')).toMatchObject({ balance: 0, overdrawn: false, total_consumed: 0 });
    expect(await batches('unpaid')).toEqual([]);
    await expectInvariants(world.sql);
  });

  it('debt paid by two grants with different expiries, one expired since: only the live one gets its part back', async () => {
    const now = (await world.clock.now()).getTime();
    const c = chargeCmd(id('c'), 'two', 50);
    await run([c]);
    await run([grantCmd(id('g'), 'two', 20, { expiresAt: iso(now + 60 * MINUTE) })]); // pays 20, keeps 0
    await run([grantCmd(id('g'), 'two', 40, { expiresAt: null })]); // pays 30, keeps 10
    await world.clock.advance(61 * MINUTE);
    try {
      const [r] = await run([refundCmd(id('rf'), c.eventId)]);
      expect(result(r!)).toMatchObject({ amount: 30, requested: 50, balance_before: 10, balance_after: 40 });
      expect((await batches('two')).map((b) => [b.amount, b.remaining, b.expires_at === null])).toEqual([
        [20n, 0n, false],
        [40n, 40n, true],
      ]);
      const [again] = await run([refundCmd(id('rf'), c.eventId, 1)]);
      expect((again as { error: Error }).error.message).toMatch(/^refund_exceeds_charge/);
      await expectInvariants(world.sql);
    } finally {
      await world.clock.advance(-61 * MINUTE);
    }
  });

  it('a debt part given back while the account is in debt again pays that newer debt, and can be traced once more', async () => {
    const c1 = chargeCmd(id('c'), 'again', 50);
    const c2 = chargeCmd(id('c'), 'again', 20);
    await run([c1, grantCmd(id('g'), 'again', 50, { expiresAt: null }), c2]); // the grant pays c1's 50; c2 leaves debt 20
    expect(await balance('again')).toMatchObject({ balance: -20 });
    const [r1] = await run([refundCmd(id('rf'), c1.eventId)]);
    expect(result(r1!)).toMatchObject({ amount: 50, balance_before: -20, balance_after: 30 });
    const [r2] = await run([refundCmd(id('rf'), c2.eventId)]);
    expect(result(r2!)).toMatchObject({ amount: 20, balance_after: 50 });
    expect((await batches('again')).map((b) => [b.amount, b.remaining])).toEqual([[50n, 50n]]);
    expect(await balance('again')).toMatchObject({ balance: 50, total_granted: 50, total_consumed: 0 });
    await expectInvariants(world.sql);
  });
});

describe('reward events without a version', () => {
  it('a missing or empty event_version means the newest version the rule lists (the last)', async () => {
    const two = structuredClone(example);
    two.rewards['forum.post.liked'].versions = ['1', '2'];
    two.rewards['forum.post.liked'].amount = 3;
    await world.applyConfig(two);
    try {
      const out = await run([
        rewardCmd(id('rw'), 'fan', { eventVersion: null }),
        rewardCmd(id('rw'), 'fan', { eventVersion: '' }),
        rewardCmd(id('rw'), 'fan', { eventVersion: ' ' }),
        rewardCmd(id('rw'), 'fan', { eventVersion: '3' }),
      ]);
      expect(outcomesOf(out)).toEqual(['applied', 'applied', 'applied', 'unsupported_version']);
      expect(await balance('fan', 'credits')).toMatchObject({ balance: 9 });
    } finally {
      await world.applyConfig(example);
    }
  });
});

describe('amounts stay exact: nothing past 2^53 − 1', () => {
  const MAX = 2n ** 53n - 1n;

  it('a grant that would take the total past 2^53 − 1 fails invalid_payload alone; its batch-mates apply', async () => {
    const over = grantCmd(id('g'), 'rich', 1);
    const out = await run([grantCmd(id('g'), 'rich', MAX), over, grantCmd(id('g'), 'rich2', 5)]);
    expect(outcomesOf(out)).toEqual(['applied', 'invalid_payload', 'applied']);
    const [row] = await world.sql<{ balance: bigint; total_granted: bigint }[]>`SELECT balance, total_granted FROM accounts WHERE user_id = 'rich'`;
    expect(row).toEqual({ balance: MAX, total_granted: MAX });
    expect(await world.sql`SELECT reason_code FROM dead_letters WHERE event_id = ${over.eventId}`).toEqual([{ reason_code: 'invalid_payload' }]);
    await expectInvariants(world.sql);
  });

  it('debt and total_consumed are bounded too; a refused charge changes nothing', async () => {
    const out = await run([chargeCmd(id('c'), 'spender', MAX), chargeCmd(id('c'), 'spender', 1), chargeCmd(id('c'), 'spender', 1, { policy: 'guarded' })]);
    expect(outcomesOf(out)).toEqual(['applied', 'invalid_payload', 'rejected_insufficient']);
    const [row] = await world.sql<{ debt: bigint; total_consumed: bigint }[]>`SELECT debt, total_consumed FROM accounts WHERE user_id = 'spender'`;
    expect(row).toEqual({ debt: MAX, total_consumed: MAX });
    await expectInvariants(world.sql);
  });
});
