import type { Db } from '../../db/client.ts';

/**
 * How far apart, at most, two neighbouring entries of one account can be dated out of order. A transaction reads
 * its clock (tally_now()) when it begins and takes the account's lock later, so under contention on one account an
 * entry may follow, in the chain, one dated a few milliseconds after it. The position "as of T" is the last entry of
 * the chain dated before T; it is found among the entries dated within this window of the newest one before T. A
 * transaction that waited longer than this between its start and its lock would be placed by its date instead.
 */
export const DATING_SKEW = '5 minutes';

/** A position in an account's entry chain: the entry, the balance it left, and the newest clock up to it. */
export interface ChainPosition {
  entryId: bigint;
  balance: bigint;
  /** The latest transaction clock among the entries up to here: every batch lapsed by then was expired by then. */
  clock: Date;
}

export async function accountId(db: Db, userId: string, asset: string): Promise<bigint | null> {
  const [row] = await db<{ account_id: bigint }[]>`SELECT account_id FROM accounts WHERE user_id = ${userId} AND asset = ${asset}`;
  return row?.account_id ?? null;
}

/**
 * The last entry of the account's chain dated before `before` (exclusive), or null when there is none. Two index
 * descents on ledger_entries_account_time: the newest date before the bound, then the window behind it.
 * `before` is an SQL timestamptz expression's input (ISO text), compared in SQL so no JS Date rounding intervenes.
 */
export async function positionBefore(db: Db, account: bigint, before: string, plusMs = 0): Promise<ChainPosition | null> {
  const [row] = await db<{ entry_id: bigint; balance_after: bigint; clock: Date }[]>`
    WITH bound AS (SELECT ${before}::text::timestamptz + make_interval(secs => ${plusMs / 1000}) AS x),
    newest AS (
      SELECT max(created_at) AS t FROM ledger_entries, bound WHERE account_id = ${String(account)}::bigint AND created_at < bound.x),
    last AS (
      SELECT max(e.entry_id) AS id FROM ledger_entries e, bound, newest
      WHERE e.account_id = ${String(account)}::bigint AND e.created_at < bound.x AND e.created_at >= newest.t - ${DATING_SKEW}::interval)
    SELECT e.entry_id, e.balance_after, newest.t AS clock FROM last JOIN ledger_entries e ON e.entry_id = last.id, newest`;
  return row ? { entryId: row.entry_id, balance: row.balance_after, clock: row.clock } : null;
}

/**
 * What had lapsed by `before` (exclusive) but was still counted at `pos`: batches of the account granted up to
 * `pos` whose expiry lies after the position's clock (so no transaction up to `pos` had expired them) and before
 * the bound. Nothing touches a lapsed batch before it is expired, so `remaining` is what it held then (an expired
 * batch keeps what expired in `remaining`).
 */
export async function lapsedAfter(db: Db, account: bigint, pos: ChainPosition, before: string, plusMs = 0): Promise<bigint> {
  const [row] = await db<{ lapsed: bigint }[]>`
    SELECT coalesce(sum(remaining), 0)::bigint AS lapsed FROM batches
    WHERE account_id = ${String(account)}::bigint AND expires_at > ${pos.clock}
      AND expires_at < ${before}::text::timestamptz + make_interval(secs => ${plusMs / 1000})
      AND grant_entry_id <= ${String(pos.entryId)}::bigint`;
  return row!.lapsed;
}

export interface StatementRow {
  entry_id: bigint;
  kind: string;
  amount: bigint;
  balance_before: bigint;
  balance_after: bigint;
  event_id: string | null;
  source_type: string | null;
  source_id: string | null;
  description: string | null;
  occurred_at: Date | null;
  created_at: Date;
}

/**
 * The account's entries after position `after` up to and including `upTo`, in chain order, as a server-side
 * cursor (postgres.js portal): `batch` rows per round trip, pulled only as fast as the consumer iterates.
 * Ordered by ledger_entries_user (user_id, entry_id), walked backwards; rows of the user's other assets are skipped.
 */
export function statementCursor(db: Db, userId: string, asset: string, after: bigint, upTo: bigint, batch: number) {
  return db<StatementRow[]>`
    SELECT entry_id, kind, amount, balance_before, balance_after, event_id, source_type, source_id, description, occurred_at, created_at
    FROM ledger_entries
    WHERE user_id = ${userId} AND asset = ${asset} AND entry_id > ${String(after)}::bigint AND entry_id <= ${String(upTo)}::bigint
    ORDER BY entry_id`.cursor(batch);
}
