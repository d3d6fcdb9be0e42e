import type { Tx } from '../../db/client.ts';

export interface NewEntry {
  entry_id: string;
  account_id: string;
  user_id: string;
  asset: string;
  kind: string;
  amount: string;
  balance_before: string;
  balance_after: string;
  event_id: string | null;
  source_type: string | null;
  source_id: string | null;
  usage: unknown;
  description: string | null;
  occurred_at: string | null;
  /** The transaction's clock (tally_now() when it began), so every entry of it is dated by the one clock it used. */
  created_at: string;
}

export interface NewAllocation {
  entry_id: string;
  batch_id: string;
  amount: string;
}

export async function insertEntries(tx: Tx, rows: NewEntry[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    INSERT INTO ledger_entries (entry_id, account_id, user_id, asset, kind, amount, balance_before, balance_after,
      event_id, source_type, source_id, usage, description, occurred_at, created_at)
    SELECT entry_id, account_id, user_id, asset, kind, amount, balance_before, balance_after,
      event_id, source_type, source_id, usage, description, occurred_at, created_at
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb) AS r(entry_id bigint, account_id bigint, user_id text,
      asset text, kind text, amount bigint, balance_before bigint, balance_after bigint, event_id text,
      source_type text, source_id text, usage jsonb, description text, occurred_at timestamptz, created_at timestamptz)`;
}

export async function insertAllocations(tx: Tx, rows: NewAllocation[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    INSERT INTO ledger_allocations (entry_id, batch_id, amount)
    SELECT entry_id, batch_id, amount
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb) AS r(entry_id bigint, batch_id bigint, amount bigint)`;
}
