import type { Db } from '../db/client.ts';
import { heldNow } from './sql/holds.ts';
import { toMillisecond } from './history.ts';

export interface BalanceView {
  user_id: string;
  asset: string;
  balance: number;
  held: number;
  available: number;
  total_granted: number;
  total_consumed: number;
  total_expired: number;
  overdrawn: boolean;
}

/** Where `held` comes from: active, unexpired holds (replaceable, e.g. to read from a replica). */
export type HeldReader = (db: Db, userId: string, asset: string) => Promise<bigint>;
let heldReader: HeldReader = heldNow;
export function setHeldReader(reader: HeldReader): void {
  heldReader = reader;
}

/**
 * The balance exact at read time: batches past expires_at no longer count, swept or not (what they held is
 * reported as expired). A never-seen account reads as zeros.
 */
export async function readBalance(db: Db, userId: string, asset: string): Promise<BalanceView> {
  const [[row], held] = await Promise.all([
    db<{ balance: bigint; debt: bigint; total_granted: bigint; total_consumed: bigint; total_expired: bigint; lapsed: bigint }[]>`
      SELECT a.balance, a.debt, a.total_granted, a.total_consumed, a.total_expired,
        coalesce((SELECT sum(b.remaining) FROM batches b
                  WHERE b.account_id = a.account_id AND b.open AND b.expires_at <= tally_now()), 0)::bigint AS lapsed
      FROM accounts a WHERE a.user_id = ${userId} AND a.asset = ${asset}`,
    heldReader(db, userId, asset),
  ]);
  const balance = row ? row.balance - row.lapsed : 0n;
  return {
    user_id: userId,
    asset,
    balance: Number(balance),
    held: Number(held),
    available: Number(balance - held),
    total_granted: Number(row?.total_granted ?? 0n),
    total_consumed: Number(row?.total_consumed ?? 0n),
    total_expired: Number((row?.total_expired ?? 0n) + (row?.lapsed ?? 0n)),
    overdrawn: (row?.debt ?? 0n) > 0n,
  };
}

export interface TransactionView {
  transaction_id: string;
  event_id: string | null;
  asset: string;
  kind: string;
  amount: number;
  balance_before: number;
  balance_after: number;
  source_type: string | null;
  source_id: string | null;
  description: string | null;
  usage: unknown;
  batches: { batch_id: string; amount: number }[];
  occurred_at: string | null;
  created_at: string;
}

/** Newest first, keyset-paginated on entry_id (`before` = the last id of the previous page). */
export async function readTransactions(
  db: Db,
  userId: string,
  opts: { asset?: string; limit: number; before?: bigint; from?: string; to?: string },
): Promise<{ items: TransactionView[]; next: bigint | null }> {
  const before = opts.before === undefined ? null : String(opts.before);
  const rows = await db<
    {
      entry_id: bigint; event_id: string | null; asset: string; kind: string; amount: bigint; balance_before: bigint;
      balance_after: bigint; source_type: string | null; source_id: string | null; description: string | null;
      usage: unknown; occurred_at: Date | null; created_at: Date;
      allocations: { batch_id: string; amount: string }[] | null;
    }[]
  >`
    SELECT e.entry_id, e.event_id, e.asset, e.kind, e.amount, e.balance_before, e.balance_after, e.source_type,
      e.source_id, e.description, e.usage, e.occurred_at, e.created_at,
      (SELECT json_agg(json_build_object('batch_id', al.batch_id::text, 'amount', al.amount::text) ORDER BY al.batch_id)
       FROM ledger_allocations al WHERE al.entry_id = e.entry_id) AS allocations
    FROM ledger_entries e
    WHERE e.user_id = ${userId}
      ${opts.asset === undefined ? db`` : db`AND e.asset = ${opts.asset}`}
      ${before === null ? db`` : db`AND e.entry_id < ${before}::bigint`}
      ${opts.from === undefined ? db`` : db`AND e.created_at >= ${toMillisecond(opts.from)}::text::timestamptz`}
      ${opts.to === undefined ? db`` : db`AND e.created_at < ${toMillisecond(opts.to)}::text::timestamptz`}
    ORDER BY e.entry_id DESC
    LIMIT ${opts.limit + 1}`;
  const page = rows.slice(0, opts.limit);
  return {
    items: page.map((r) => ({
      transaction_id: String(r.entry_id),
      event_id: r.event_id,
      asset: r.asset,
      kind: r.kind,
      amount: Number(r.amount),
      balance_before: Number(r.balance_before),
      balance_after: Number(r.balance_after),
      source_type: r.source_type,
      source_id: r.source_id,
      description: r.description,
      usage: r.usage,
      batches: (r.allocations ?? []).map((a) => ({ batch_id: a.batch_id, amount: Number(a.amount) })),
      occurred_at: r.occurred_at?.toISOString() ?? null,
      created_at: r.created_at.toISOString(),
    })),
    next: rows.length > opts.limit ? page.at(-1)!.entry_id : null,
  };
}

export interface BatchView {
  batch_id: string;
  asset: string;
  amount: number;
  remaining: number;
  expires_at: string | null;
  source: string;
  source_id: string | null;
  created_at: string;
}

/**
 * Batches that still count now, with something left, in burn order; keyset-paginated (`after` = the last
 * batch_id of the previous page: the next page starts after that batch's place in the order).
 */
export async function readBatches(
  db: Db,
  userId: string,
  asset?: string,
  page: { limit: number; after?: bigint } = { limit: 1000 },
): Promise<{ items: BatchView[]; next: bigint | null }> {
  const after = page.after === undefined ? null : String(page.after);
  const rows = await db<
    { batch_id: bigint; asset: string; amount: bigint; remaining: bigint; expires_at: Date | null; source: string; source_id: string | null; created_at: Date }[]
  >`
    SELECT b.batch_id, a.asset, b.amount, b.remaining, b.expires_at, b.source, b.source_id, b.created_at
    FROM batches b JOIN accounts a USING (account_id)
    WHERE a.user_id = ${userId} ${asset === undefined ? db`` : db`AND a.asset = ${asset}`}
      AND b.open AND (b.expires_at IS NULL OR b.expires_at > tally_now())
      ${after === null ? db`` : db`AND (a.asset, coalesce(b.expires_at, 'infinity'), b.batch_id) >
        (SELECT a2.asset, coalesce(b2.expires_at, 'infinity'), b2.batch_id
         FROM batches b2 JOIN accounts a2 USING (account_id) WHERE b2.batch_id = ${after}::bigint)`}
    ORDER BY a.asset, coalesce(b.expires_at, 'infinity'), b.batch_id
    LIMIT ${page.limit + 1}`;
  const items = rows.slice(0, page.limit).map((r) => ({
    batch_id: String(r.batch_id),
    asset: r.asset,
    amount: Number(r.amount),
    remaining: Number(r.remaining),
    expires_at: r.expires_at?.toISOString() ?? null,
    source: r.source,
    source_id: r.source_id,
    created_at: r.created_at.toISOString(),
  }));
  return { items, next: rows.length > page.limit ? rows[page.limit - 1]!.batch_id : null };
}
