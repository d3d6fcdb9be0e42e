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

/** A charge event as refunds see it: not decided, decided without an entry (it charged nothing), or its entry. */
export interface ChargeLookup {
  event_id: string;
  decided: boolean;
  entry: ChargeEntryRow | null;
}

/**
 * For each charge event id, whether it is decided and, if it charged something, its consume entry — found
 * through the charge's decision, whose result names the entry (`transaction_id`). One statement for both.
 */
export async function findCharges(tx: Tx, eventIds: string[]): Promise<ChargeLookup[]> {
  if (eventIds.length === 0) return [];
  const rows = await tx<(Omit<ChargeEntryRow, 'entry_id'> & { entry_id: bigint | null; key: string; decided: boolean })[]>`
    SELECT k.event_id AS key, d.result IS NOT NULL AS decided,
      e.entry_id, e.event_id, e.account_id, e.user_id, e.asset, e.amount, e.source_type, e.usage, e.occurred_at
    FROM unnest(${eventIds}::text[]) AS k(event_id)
    LEFT JOIN LATERAL (SELECT p.result FROM processed_events p WHERE p.queue = ${QUEUE.charges} AND p.event_id = k.event_id) d ON true
    LEFT JOIN ledger_entries e
      ON e.entry_id = (d.result->>'transaction_id')::bigint AND e.kind = 'consume' AND e.event_id = k.event_id`;
  return rows.map(({ key, decided, ...e }) => ({ event_id: key, decided, entry: e.entry_id === null ? null : (e as ChargeEntryRow) }));
}

/**
 * One part a refund took from its charge: batch_id null = unpaid debt of the charge (lowered); a batch with
 * `paid` = debt of the charge that batch had paid (given back to it); a batch without = a batch the charge burned.
 * `restored` false: the batch was no longer live, so nothing came back for the part.
 */
export interface RefundPartJson {
  batch_id: string | null;
  amount: string;
  restored: boolean;
  paid?: true;
}

export interface ChargePartsRow {
  entry_id: bigint;
  allocations: { batch_id: string; amount: string }[];
  refunded: RefundPartJson[];
  /** The charge's debt part, if it went into debt. */
  debt: { amount: string; remaining: string; refunded: string } | null;
  /** Which batches paid that debt (a batch may appear once per paying entry). */
  payments: { batch_id: string; amount: string }[];
}

/** For each charge entry: the batches it burned, its debt and who paid it, and every part earlier refunds took. */
export function loadChargeParts(tx: Tx, entryIds: bigint[]): Promise<ChargePartsRow[]> {
  return tx<ChargePartsRow[]>`
    SELECT e.id AS entry_id,
      coalesce((SELECT json_agg(json_build_object('batch_id', al.batch_id::text, 'amount', al.amount::text))
                FROM ledger_allocations al WHERE al.entry_id = e.id), '[]') AS allocations,
      coalesce((SELECT json_agg(p) FROM refunds r, jsonb_array_elements(r.parts) p WHERE r.charge_entry_id = e.id), '[]') AS refunded,
      (SELECT json_build_object('amount', d.amount::text, 'remaining', d.remaining::text, 'refunded', d.refunded::text)
       FROM debts d WHERE d.charge_entry_id = e.id) AS debt,
      coalesce((SELECT json_agg(json_build_object('batch_id', dp.batch_id::text, 'amount', dp.amount::text) ORDER BY dp.entry_id, dp.batch_id)
                FROM debt_payments dp WHERE dp.charge_entry_id = e.id), '[]') AS payments
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
