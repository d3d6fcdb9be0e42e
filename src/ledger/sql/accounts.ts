import type { Tx } from '../../db/client.ts';

export interface AccountRow {
  account_id: bigint;
  user_id: string;
  asset: string;
  balance: bigint;
  debt: bigint;
  total_granted: bigint;
  total_consumed: bigint;
  total_expired: bigint;
  /** The balance-alert keys that have fired and not cleared (src/alerts/balance-rules.ts). */
  alerts_fired: string[];
}

/**
 * Locks the accounts (creating missing ones), in (user_id, asset) order so that concurrent transactions
 * touching overlapping accounts queue up instead of deadlocking. Existing accounts — nearly always all of
 * them — take one statement; an upsert for every pair would cost an index probe each and wait on rows
 * other transactions are updating. Missing ones are then inserted and locked, also in order. A missing pair
 * that another transaction created and committed in between is locked after rows that sort after it — out of
 * order — so it is locked NOWAIT: if someone holds it, this transaction fails at once with lock_not_available (a
 * transient fault, retried) instead of possibly closing a lock cycle (a deadlock, found only after
 * deadlock_timeout). `onCreate` is told when some had to be created: anything read before this returned was read
 * without their locks.
 */
export async function lockAccounts(tx: Tx, pairs: { userId: string; asset: string }[], onCreate?: () => void): Promise<AccountRow[]> {
  const key = (userId: string, asset: string) => `${userId}\u0000${asset}`;
  const unique = [...new Map(pairs.map((p) => [key(p.userId, p.asset), p])).values()];
  const sorted = unique.sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : a.asset < b.asset ? -1 : a.asset > b.asset ? 1 : 0));
  const rows = await selectForUpdate(tx, sorted);
  if (rows.length === sorted.length) return rows;
  const found = new Set(rows.map((r) => key(r.user_id, r.asset)));
  const missing = sorted.filter((p) => !found.has(key(p.userId, p.asset)));
  onCreate?.();
  await tx`
    INSERT INTO accounts (user_id, asset)
    SELECT u, a FROM unnest(${missing.map((p) => p.userId)}::text[], ${missing.map((p) => p.asset)}::text[]) AS p(u, a) ORDER BY u, a
    ON CONFLICT (user_id, asset) DO NOTHING`;
  return [...rows, ...(await selectForUpdate(tx, missing, true))];
}

async function selectForUpdate(tx: Tx, sorted: { userId: string; asset: string }[], nowait = false): Promise<AccountRow[]> {
  const users = sorted.map((p) => p.userId);
  if (nowait) {
    return tx<AccountRow[]>`
      SELECT a.account_id, a.user_id, a.asset, a.balance, a.debt, a.total_granted, a.total_consumed, a.total_expired, a.alerts_fired
      FROM accounts a JOIN unnest(${users}::text[], ${sorted.map((p) => p.asset)}::text[]) AS p(u, a2) ON a.user_id = p.u AND a.asset = p.a2
      WHERE a.user_id = ANY(${[...new Set(users)]}::text[])
      ORDER BY a.user_id, a.asset
      FOR UPDATE OF a NOWAIT`;
  }
  return tx<AccountRow[]>`
    SELECT a.account_id, a.user_id, a.asset, a.balance, a.debt, a.total_granted, a.total_consumed, a.total_expired, a.alerts_fired
    FROM accounts a JOIN unnest(${users}::text[], ${sorted.map((p) => p.asset)}::text[]) AS p(u, a2) ON a.user_id = p.u AND a.asset = p.a2
    WHERE a.user_id = ANY(${[...new Set(users)]}::text[]) -- an index probe per user, whatever the plan guesses of unnest
    ORDER BY a.user_id, a.asset
    FOR UPDATE OF a`;
}

export interface AccountUpdate {
  account_id: string;
  balance: string;
  debt: string;
  total_granted: string;
  total_consumed: string;
  total_expired: string;
  alerts_fired: string[];
}

export async function updateAccounts(tx: Tx, rows: AccountUpdate[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    UPDATE accounts a SET balance = r.balance, debt = r.debt, total_granted = r.total_granted,
      total_consumed = r.total_consumed, total_expired = r.total_expired, alerts_fired = r.alerts_fired,
      version = a.version + 1, updated_at = now()
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
      AS r(account_id bigint, balance bigint, debt bigint, total_granted bigint, total_consumed bigint, total_expired bigint, alerts_fired text[])
    WHERE a.account_id = r.account_id AND a.account_id = ANY(${rows.map((r) => r.account_id)}::bigint[])`;
}
