import type { Job } from 'bullmq';
import type { Sql } from '../src/db/client.ts';

/**
 * Baseline (b): the reference designs' approach — one database transaction per job, the account row locked
 * with SELECT … FOR UPDATE, then UPDATE, a ledger row and an idempotency row. Its own minimal tables, so the
 * baseline pays for nothing tally's schema adds (batches, allocations, outbox, CHECKs) and is not handicapped.
 */
export async function createNaiveSchema(sql: Sql): Promise<void> {
  await sql`CREATE TABLE naive_accounts (user_id text PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0))`;
  await sql`CREATE TABLE naive_ledger (
    entry_id bigserial PRIMARY KEY, user_id text NOT NULL, amount bigint NOT NULL,
    balance_before bigint NOT NULL, balance_after bigint NOT NULL, event_id text NOT NULL,
    source_type text, source_id text, created_at timestamptz NOT NULL DEFAULT now())`;
  await sql`CREATE TABLE naive_processed (
    event_id text PRIMARY KEY, outcome text NOT NULL, result jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`;
}

/** Balances for the baseline, set directly: setup, not measured. */
export async function grantNaive(sql: Sql, grants: Map<string, number>): Promise<void> {
  const users = [...grants.keys()];
  const amounts = [...grants.values()].map(String);
  await sql`INSERT INTO naive_accounts (user_id, balance)
    SELECT u, a FROM unnest(${users}::text[], ${amounts}::bigint[]) AS g(u, a)`;
}

/** The same price the example config gives `script` (fixed 5): the baseline prices like tally would. */
const FIXED_PRICE: Record<string, bigint> = { script: 5n };

interface ChargeData {
  event_id: string;
  user_id: string;
  source_type: string;
  source_id: string;
  amount?: number;
}

export function naiveProcessor(sql: Sql) {
  return async (job: Job<ChargeData>) => {
    const d = job.data;
    const price = d.amount !== undefined ? BigInt(d.amount) : (FIXED_PRICE[d.source_type] ?? 1n);
    try {
      return await sql.begin(async (tx) => {
        const [acct] = await tx<{ balance: bigint }[]>`SELECT balance FROM naive_accounts WHERE user_id = ${d.user_id} FOR UPDATE`;
        const before = acct?.balance ?? 0n;
        if (before < price) {
          const result = { outcome: 'rejected_insufficient', amount: 0, balance_before: Number(before), balance_after: Number(before) };
          await tx`INSERT INTO naive_processed (event_id, outcome, result) VALUES (${d.event_id}, ${result.outcome}, ${tx.json(result)})`;
          return result;
        }
        const after = before - price;
        await tx`UPDATE naive_accounts SET balance = ${after} WHERE user_id = ${d.user_id}`;
        await tx`INSERT INTO naive_ledger (user_id, amount, balance_before, balance_after, event_id, source_type, source_id)
          VALUES (${d.user_id}, ${-price}, ${before}, ${after}, ${d.event_id}, ${d.source_type}, ${d.source_id})`;
        const result = { outcome: 'applied', amount: Number(price), balance_before: Number(before), balance_after: Number(after) };
        await tx`INSERT INTO naive_processed (event_id, outcome, result) VALUES (${d.event_id}, ${result.outcome}, ${tx.json(result)})`;
        return result;
      });
    } catch (err) {
      // A replay: the idempotency row's primary key refused it, and the whole transaction rolled back.
      if ((err as { code?: string }).code === '23505') return { outcome: 'noop_duplicate' };
      throw err;
    }
  };
}

export async function countNaiveApplied(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: bigint }[]>`SELECT count(*) AS n FROM naive_processed WHERE outcome = 'applied'`;
  return Number(row?.n ?? 0n);
}
