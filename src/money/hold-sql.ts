// The statements of a group-committed hold transaction (src/money/hold-batch.ts): each takes every hold or account
// of the run at once, so a run of any size costs the same few round trips.
import type { Db, Tx } from '../db/client.ts';
import type { HoldRow } from '../ledger/sql/holds.ts';

/** The holds already placed under these event_ids (a replay is answered from these, before any price is looked up). */
export function findHoldsByEvents(db: Db, eventIds: string[]): Promise<HoldRow[]> {
  return db<HoldRow[]>`SELECT *, expires_at <= tally_now() AS lapsed FROM holds WHERE event_id = ANY(${eventIds}::text[])`;
}

export interface AccountRoom {
  /** What lapsed in batches the sweep has not closed yet: no longer part of the balance. */
  lapsed: bigint;
  /** Σ of the active holds not past expires_at. */
  held: bigint;
}

/** Under the accounts' locks: lapsed batch points and what is held, per account, at the transaction's tally_now(). */
export async function roomOfAccounts(tx: Tx, accountIds: bigint[]): Promise<Map<bigint, AccountRoom>> {
  const rows = await tx<{ account_id: bigint; lapsed: bigint; held: bigint }[]>`
    SELECT a.id AS account_id,
      (SELECT coalesce(sum(remaining), 0) FROM batches
       WHERE account_id = a.id AND open AND expires_at <= tally_now())::bigint AS lapsed,
      (SELECT coalesce(sum(amount), 0) FROM holds
       WHERE account_id = a.id AND status = 'active' AND expires_at > tally_now())::bigint AS held
    FROM unnest(${accountIds.map(String)}::bigint[]) AS a(id)`;
  return new Map(rows.map((r) => [r.account_id, { lapsed: r.lapsed, held: r.held }]));
}

/**
 * The same by (user_id, asset), for accounts that exist (a missing one has no room yet): sent right behind the lock
 * statement, so it needs no account id from it.
 */
export async function roomOfPairs(tx: Tx, pairs: { userId: string; asset: string }[]): Promise<Map<bigint, AccountRoom>> {
  const users = pairs.map((p) => p.userId);
  const rows = await tx<{ account_id: bigint; lapsed: bigint; held: bigint }[]>`
    SELECT a.account_id,
      (SELECT coalesce(sum(remaining), 0) FROM batches
       WHERE account_id = a.account_id AND open AND expires_at <= tally_now())::bigint AS lapsed,
      (SELECT coalesce(sum(amount), 0) FROM holds
       WHERE account_id = a.account_id AND status = 'active' AND expires_at > tally_now())::bigint AS held
    FROM accounts a JOIN unnest(${users}::text[], ${pairs.map((p) => p.asset)}::text[]) AS p(u, a2) ON a.user_id = p.u AND a.asset = p.a2
    WHERE a.user_id = ANY(${[...new Set(users)]}::text[])`;
  return new Map(rows.map((r) => [r.account_id, { lapsed: r.lapsed, held: r.held }]));
}

export interface NewHoldRow {
  event_id: string;
  payload_hash: string;
  account_id: string;
  user_id: string;
  asset: string;
  source_type: string;
  usage_estimate: unknown;
  amount: string;
  ttl_seconds: number;
}

/** Inserts the run's new holds in one statement; the caller holds their accounts' locks. */
export async function insertHolds(tx: Tx, rows: NewHoldRow[]): Promise<HoldRow[]> {
  if (rows.length === 0) return [];
  return tx<HoldRow[]>`
    INSERT INTO holds (hold_id, event_id, payload_hash, account_id, user_id, asset, source_type, usage_estimate, amount, expires_at)
    SELECT 'h-' || replace(gen_random_uuid()::text, '-', ''), r.event_id, r.payload_hash, r.account_id, r.user_id, r.asset,
      r.source_type, r.usage_estimate, r.amount, tally_now() + make_interval(secs => r.ttl_seconds)
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
      AS r(event_id text, payload_hash text, account_id bigint, user_id text, asset text, source_type text,
           usage_estimate jsonb, amount bigint, ttl_seconds int)
    RETURNING *, false AS lapsed`;
}

/** Releases these holds where still active; the caller holds their accounts' locks. Returns the released rows. */
export async function releaseHolds(tx: Tx, holdIds: string[]): Promise<HoldRow[]> {
  if (holdIds.length === 0) return [];
  return tx<HoldRow[]>`
    UPDATE holds SET status = 'released', closed_at = tally_now()
    WHERE hold_id = ANY(${holdIds}::text[]) AND status = 'active'
    RETURNING *, expires_at <= tally_now() AS lapsed`;
}
