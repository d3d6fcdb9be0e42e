import type { Tx } from '../../db/client.ts';

export interface OutboxRow {
  user_id: string;
  type: 'balance_changed' | 'affinity_update' | 'level_up' | 'level_down' | 'alert';
  data: Record<string, unknown>;
}

/** Written in the transaction of the change it announces: pushed if and only if the change committed. */
export async function insertOutbox(tx: Tx, rows: OutboxRow[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    INSERT INTO outbox (user_id, type, data)
    SELECT user_id, type, data
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb) AS r(user_id text, type text, data jsonb)`;
}
