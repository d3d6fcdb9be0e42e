import type { Tx } from '../../db/client.ts';

export interface BatchRow {
  batch_id: bigint;
  account_id: bigint;
  amount: bigint;
  remaining: bigint;
  expires_at: Date | null;
  source: string;
  source_id: string | null;
  grant_entry_id: bigint;
}

/** Unexpired batches with something left, in burn order (lapsed ones included: the caller expires them). */
export function loadOpenBatches(tx: Tx, accountIds: bigint[]): Promise<BatchRow[]> {
  return tx<BatchRow[]>`
    SELECT batch_id, account_id, amount, remaining, expires_at, source, source_id, grant_entry_id
    FROM batches
    WHERE account_id = ANY(${accountIds.map(String)}::bigint[]) AND open
    ORDER BY account_id, expires_at ASC NULLS LAST, batch_id`;
}

export interface NewBatch {
  batch_id: string;
  account_id: string;
  amount: string;
  remaining: string;
  expires_at: string | null;
  expired: boolean;
  source: string;
  source_id: string | null;
  grant_entry_id: string;
}

export async function insertBatches(tx: Tx, rows: NewBatch[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    INSERT INTO batches (batch_id, account_id, amount, remaining, expires_at, expired, source, source_id, grant_entry_id)
    SELECT batch_id, account_id, amount, remaining, expires_at, expired, source, source_id, grant_entry_id
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb) AS r(batch_id bigint, account_id bigint, amount bigint,
      remaining bigint, expires_at timestamptz, expired boolean, source text, source_id text, grant_entry_id bigint)`;
}

export interface BatchUpdate {
  batch_id: string;
  remaining: string;
  expired: boolean;
}

export async function updateBatches(tx: Tx, rows: BatchUpdate[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    UPDATE batches b SET remaining = r.remaining, expired = r.expired
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb) AS r(batch_id bigint, remaining bigint, expired boolean)
    WHERE b.batch_id = r.batch_id AND b.batch_id = ANY(${rows.map((r) => r.batch_id)}::bigint[])`;
}

/** Fresh ids from the sequences, in increasing order, for the rows a transaction is about to write. */
export async function allocateIds(tx: Tx, batches: number, entries: number): Promise<{ batchIds: bigint[]; entryIds: bigint[] }> {
  const [row] = await tx<{ b: bigint[]; e: bigint[] }[]>`
    SELECT array(SELECT nextval('batches_batch_id_seq') FROM generate_series(1, ${batches}::int)) AS b,
           array(SELECT nextval('ledger_entries_entry_id_seq') FROM generate_series(1, ${entries}::int)) AS e`;
  return { batchIds: row!.b.map(BigInt), entryIds: row!.e.map(BigInt) };
}
