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
}

/**
 * Creates missing accounts and locks all of them, both in (user_id, asset) order so that concurrent
 * transactions touching overlapping accounts queue up instead of deadlocking.
 */
export async function lockAccounts(tx: Tx, pairs: { userId: string; asset: string }[]): Promise<AccountRow[]> {
  const sorted = [...pairs].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : a.asset < b.asset ? -1 : a.asset > b.asset ? 1 : 0));
  const users = sorted.map((p) => p.userId);
  const assets = sorted.map((p) => p.asset);
  // Issued together: postgres.js pipelines them on the transaction's connection.
  const [, rows] = await Promise.all([
    tx`
    INSERT INTO accounts (user_id, asset)
    SELECT u, a FROM unnest(${users}::text[], ${assets}::text[]) AS p(u, a) ORDER BY u, a
    ON CONFLICT (user_id, asset) DO NOTHING`,
    tx<AccountRow[]>`
    SELECT a.account_id, a.user_id, a.asset, a.balance, a.debt, a.total_granted, a.total_consumed, a.total_expired
    FROM accounts a JOIN unnest(${users}::text[], ${assets}::text[]) AS p(u, a2) ON a.user_id = p.u AND a.asset = p.a2
    WHERE a.user_id = ANY(${[...new Set(users)]}::text[]) -- an index probe per user, whatever the plan guesses of unnest
    ORDER BY a.user_id, a.asset
    FOR UPDATE OF a`,
  ]);
  return rows;
}

export interface AccountUpdate {
  account_id: string;
  balance: string;
  debt: string;
  total_granted: string;
  total_consumed: string;
  total_expired: string;
}

export async function updateAccounts(tx: Tx, rows: AccountUpdate[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    UPDATE accounts a SET balance = r.balance, debt = r.debt, total_granted = r.total_granted,
      total_consumed = r.total_consumed, total_expired = r.total_expired, version = a.version + 1, updated_at = now()
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
      AS r(account_id bigint, balance bigint, debt bigint, total_granted bigint, total_consumed bigint, total_expired bigint)
    WHERE a.account_id = r.account_id AND a.account_id = ANY(${rows.map((r) => r.account_id)}::bigint[])`;
}
