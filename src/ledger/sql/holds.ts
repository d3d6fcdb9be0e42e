import type { Db, Tx } from '../../db/client.ts';

export interface HoldRow {
  hold_id: string;
  event_id: string;
  payload_hash: string;
  account_id: bigint;
  user_id: string;
  asset: string;
  source_type: string;
  amount: bigint;
  status: 'active' | 'settled' | 'released' | 'expired';
  expires_at: Date;
  settle_event_id: string | null;
  settled_amount: bigint | null;
  created_at: Date;
  closed_at: Date | null;
  /** Past expires_at by the business clock (tally_now()), swept or not. */
  lapsed: boolean;
}

export function loadHolds(db: Db, holdIds: string[]): Promise<HoldRow[]> {
  return db<HoldRow[]>`SELECT *, expires_at <= tally_now() AS lapsed FROM holds WHERE hold_id = ANY(${holdIds}::text[])`;
}

export async function findHoldByEvent(db: Db, eventId: string): Promise<HoldRow | undefined> {
  const [row] = await db<HoldRow[]>`SELECT *, expires_at <= tally_now() AS lapsed FROM holds WHERE event_id = ${eventId}`;
  return row;
}

/** Σ of the holds that still count at `at` (active and not past expires_at), per account. */
export async function heldByAccount(db: Db, accountIds: bigint[], at: Date): Promise<Map<bigint, bigint>> {
  if (accountIds.length === 0) return new Map();
  const rows = await db<{ account_id: bigint; held: bigint }[]>`
    SELECT account_id, sum(amount)::bigint AS held FROM holds
    WHERE account_id = ANY(${accountIds.map(String)}::bigint[]) AND status = 'active' AND expires_at > ${at}
    GROUP BY account_id`;
  return new Map(rows.map((r) => [r.account_id, r.held]));
}

/** What is held on a user's account right now (the balance response's `held`). */
export async function heldNow(db: Db, userId: string, asset: string): Promise<bigint> {
  const [row] = await db<{ held: bigint }[]>`
    SELECT coalesce(sum(h.amount), 0)::bigint AS held FROM holds h JOIN accounts a USING (account_id)
    WHERE a.user_id = ${userId} AND a.asset = ${asset} AND h.status = 'active' AND h.expires_at > tally_now()`;
  return row?.held ?? 0n;
}

export interface NewHold {
  event_id: string;
  payload_hash: string;
  account_id: bigint;
  user_id: string;
  asset: string;
  source_type: string;
  usage_estimate: unknown;
  amount: bigint;
  ttl_seconds: number;
}

export async function insertHold(tx: Tx, h: NewHold): Promise<HoldRow> {
  const [row] = await tx<HoldRow[]>`
    INSERT INTO holds (hold_id, event_id, payload_hash, account_id, user_id, asset, source_type, usage_estimate, amount, expires_at)
    VALUES ('h-' || replace(gen_random_uuid()::text, '-', ''), ${h.event_id}, ${h.payload_hash}, ${String(h.account_id)}::bigint,
      ${h.user_id}, ${h.asset}, ${h.source_type}, ${h.usage_estimate === undefined ? null : tx.json(h.usage_estimate as never)},
      ${String(h.amount)}::bigint, tally_now() + make_interval(secs => ${h.ttl_seconds}))
    RETURNING *, false AS lapsed`;
  return row!;
}

export interface HoldSettlement {
  hold_id: string;
  settle_event_id: string;
  settled_amount: string;
}

/** Marks holds settled by the charges of this transaction (their accounts are locked by it). */
export async function settleHolds(tx: Tx, rows: HoldSettlement[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    UPDATE holds h SET status = 'settled', settle_event_id = r.settle_event_id, settled_amount = r.settled_amount, closed_at = tally_now()
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb) AS r(hold_id text, settle_event_id text, settled_amount bigint)
    WHERE h.hold_id = r.hold_id AND h.hold_id = ANY(${rows.map((r) => r.hold_id)}::text[])`;
}

/** Releases an active hold; the caller holds the account's lock. */
export async function releaseHold(tx: Tx, holdId: string): Promise<void> {
  await tx`UPDATE holds SET status = 'released', closed_at = tally_now() WHERE hold_id = ${holdId} AND status = 'active'`;
}

/**
 * The sweep: active holds past expires_at become 'expired'. They stopped counting as held the moment
 * they lapsed; this only makes the status say so, hence no account lock is needed.
 */
export async function expireHolds(db: Db, limit: number): Promise<number> {
  const rows = await db`
    UPDATE holds SET status = 'expired', closed_at = tally_now()
    WHERE hold_id IN (SELECT hold_id FROM holds WHERE status = 'active' AND expires_at <= tally_now() LIMIT ${limit} FOR UPDATE SKIP LOCKED)
    RETURNING hold_id`;
  return rows.length;
}

/** Under the account's lock: what lapsed unswept (no longer counts) and what is held, at the transaction's tally_now(). */
export async function lapsedAndHeld(tx: Tx, accountId: bigint): Promise<{ lapsed: bigint; held: bigint }> {
  const [row] = await tx<{ lapsed: bigint; held: bigint }[]>`
    SELECT
      (SELECT coalesce(sum(remaining), 0) FROM batches
       WHERE account_id = ${String(accountId)}::bigint AND open AND expires_at <= tally_now())::bigint AS lapsed,
      (SELECT coalesce(sum(amount), 0) FROM holds
       WHERE account_id = ${String(accountId)}::bigint AND status = 'active' AND expires_at > tally_now())::bigint AS held`;
  return row!;
}
