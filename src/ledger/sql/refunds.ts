import type { Tx } from '../../db/client.ts';
import { QUEUE } from '../../queues/common.ts';

export interface ChargeEntryRow {
  entry_id: bigint;
  event_id: string;
  account_id: bigint;
  user_id: string;
  asset: string;
  amount: bigint;
  source_type: string | null;
  usage: { model?: string } | null;
  occurred_at: Date | null;
}

/**
 * The consume entries of applied charges, by their event ids (one entry per applied charge), found through
 * each charge's decision: its result names the entry (`transaction_id`).
 */
export function findChargeEntries(tx: Tx, eventIds: string[]): Promise<ChargeEntryRow[]> {
  return tx<ChargeEntryRow[]>`
    SELECT e.entry_id, e.event_id, e.account_id, e.user_id, e.asset, e.amount, e.source_type, e.usage, e.occurred_at
    FROM unnest(${eventIds}::text[]) AS k(event_id)
    JOIN LATERAL (SELECT p.result FROM processed_events p WHERE p.queue = ${QUEUE.charges} AND p.event_id = k.event_id) d ON true
    JOIN ledger_entries e ON e.entry_id = (d.result->>'transaction_id')::bigint
    WHERE e.kind = 'consume' AND e.event_id = k.event_id`;
}

export interface RefundPartJson {
  batch_id: string | null;
  amount: string;
  restored: boolean;
}

export interface ChargePartsRow {
  entry_id: bigint;
  allocations: { batch_id: string; amount: string }[];
  refunded: RefundPartJson[];
}

/** For each charge entry: the batches it burned, and every part earlier refunds took from it. */
export function loadChargeParts(tx: Tx, entryIds: bigint[]): Promise<ChargePartsRow[]> {
  return tx<ChargePartsRow[]>`
    SELECT e.id AS entry_id,
      coalesce((SELECT json_agg(json_build_object('batch_id', al.batch_id::text, 'amount', al.amount::text))
                FROM ledger_allocations al WHERE al.entry_id = e.id), '[]') AS allocations,
      coalesce((SELECT json_agg(p) FROM refunds r, jsonb_array_elements(r.parts) p WHERE r.charge_entry_id = e.id), '[]') AS refunded
    FROM unnest(${entryIds.map(String)}::bigint[]) AS e(id)`;
}

export interface BatchByIdRow {
  batch_id: bigint;
  account_id: bigint;
  amount: bigint;
  remaining: bigint;
  expires_at: Date | null;
  expired: boolean;
  source: string;
  source_id: string | null;
  grant_entry_id: bigint;
}

export function loadBatchesById(tx: Tx, batchIds: bigint[]): Promise<BatchByIdRow[]> {
  return tx<BatchByIdRow[]>`
    SELECT batch_id, account_id, amount, remaining, expires_at, expired, source, source_id, grant_entry_id
    FROM batches WHERE batch_id = ANY(${batchIds.map(String)}::bigint[])`;
}

export interface NewRefund {
  event_id: string;
  charge_entry_id: string;
  requested: string;
  restored: string;
  entry_id: string | null;
  parts: RefundPartJson[];
}

export async function insertRefunds(tx: Tx, rows: NewRefund[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    INSERT INTO refunds (event_id, charge_entry_id, requested, restored, entry_id, parts)
    SELECT event_id, charge_entry_id, requested, restored, entry_id, parts
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
      AS r(event_id text, charge_entry_id bigint, requested bigint, restored bigint, entry_id bigint, parts jsonb)`;
}
