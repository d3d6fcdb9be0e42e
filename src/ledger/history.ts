import type { Db } from '../db/client.ts';
import { accountId, lapsedAfter, positionBefore, statementCursor, type ChainPosition, type StatementRow } from './sql/history.ts';

/**
 * A balance as of an instant, from the ledger (CONTRACT v2 §4). Two views, both reported:
 * - `recorded_balance` — the ledger's view: the balance the last entry dated by then left;
 * - `balance` — the exact balance then: the recorded one less what had lapsed by then but was expired only later
 *   (by the sweep or the account's next transaction), the way `GET …/balances/:asset` is exact at read time.
 * Instants are compared to the millisecond, as timestamps are shown: "as of T" includes every entry whose
 * created_at, shown to the millisecond, is T or earlier, and a batch lapses at its expires_at (the instant itself
 * already counts as expired).
 */
export interface BalanceAt {
  balance: bigint;
  recordedBalance: bigint;
  lapsed: bigint;
  /** The last entry counted (null: none yet). */
  entryId: bigint | null;
}

const ZERO: BalanceAt = { balance: 0n, recordedBalance: 0n, lapsed: 0n, entryId: null };

/** The state just before `before` (exclusive, plus `plusMs`): see BalanceAt. */
/**
 * An instant's millisecond: fractional digits past the third are cut, not rounded (`…46.7141Z` is `…46.714Z`, and so
 * is `…46.714999999Z`, which PostgreSQL would round up into the next millisecond — or second). History is dated to the
 * millisecond, the answer echoes the instant to the millisecond (JS Date), and the SQL must see that same instant.
 */
export function toMillisecond(iso: string): string {
  return iso.replace(/(\.\d{3})\d+/, '$1');
}

async function stateBefore(db: Db, account: bigint, instant: string, plusMs: number): Promise<{ pos: ChainPosition | null; at: BalanceAt }> {
  const before = toMillisecond(instant);
  const pos = await positionBefore(db, account, before, plusMs);
  if (!pos) return { pos, at: ZERO };
  const lapsed = await lapsedAfter(db, account, pos, before, plusMs);
  return { pos, at: { balance: pos.balance - lapsed, recordedBalance: pos.balance, lapsed, entryId: pos.entryId } };
}

/** As of the end of millisecond `at` (ISO): every entry shown at `at` or earlier counts. */
export async function balanceAt(db: Db, userId: string, asset: string, at: string): Promise<BalanceAt> {
  const account = await accountId(db, userId, asset);
  if (account === null) return ZERO;
  return (await stateBefore(db, account, at, 1)).at;
}

export interface Statement {
  opening: BalanceAt;
  closing: BalanceAt;
  /** The entries between the two, in chain order, a batch at a time: opening.recorded + Σ amount = closing.recorded. */
  entries: AsyncIterable<StatementRow[]>;
}

/** Rows fetched per round trip while streaming: memory stays at one batch whatever the range. */
export const STATEMENT_BATCH = 1000;

/**
 * A statement of [from, to): the opening state just before `from`, the entries, the closing state just before
 * `to`. The entries are the chain between the two positions, found first — so what is streamed is exactly what
 * lies between the balances reported, however many entries are written meanwhile.
 */
export async function statement(db: Db, userId: string, asset: string, from: string, to: string): Promise<Statement> {
  const account = await accountId(db, userId, asset);
  if (account === null) return { opening: ZERO, closing: ZERO, entries: (async function* () {})() };
  const [open, close] = await Promise.all([stateBefore(db, account, from, 0), stateBefore(db, account, to, 0)]);
  const after = open.pos?.entryId ?? 0n;
  const upTo = close.pos?.entryId ?? 0n;
  return { opening: open.at, closing: close.at, entries: rows(db, userId, asset, after, upTo) };
}

async function* rows(db: Db, userId: string, asset: string, after: bigint, upTo: bigint): AsyncGenerator<StatementRow[]> {
  if (upTo <= after) return;
  for await (const batch of statementCursor(db, userId, asset, after, upTo, STATEMENT_BATCH)) yield batch;
}
