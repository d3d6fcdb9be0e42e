import type { Tx } from '../../db/client.ts';

export interface DebtRow {
  charge_entry_id: bigint;
  account_id: bigint;
  amount: bigint;
  remaining: bigint;
  refunded: bigint;
}

/** The open debts of these accounts (those with debt > 0), oldest first: the order payments take them in. */
export function loadOpenDebts(tx: Tx, accountIds: bigint[]): Promise<DebtRow[]> {
  return tx<DebtRow[]>`
    SELECT charge_entry_id, account_id, amount, remaining, refunded
    FROM debts
    WHERE account_id = ANY(${accountIds.map(String)}::bigint[]) AND remaining > 0
    ORDER BY account_id, charge_entry_id`;
}

export interface DebtWrite {
  charge_entry_id: string;
  account_id: string;
  amount: string;
  remaining: string;
  refunded: string;
}

/** New debts and changed ones in one statement (a debt's amount never changes; remaining and refunded do). */
export async function writeDebts(tx: Tx, rows: DebtWrite[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    INSERT INTO debts (charge_entry_id, account_id, amount, remaining, refunded)
    SELECT charge_entry_id, account_id, amount, remaining, refunded
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
      AS r(charge_entry_id bigint, account_id bigint, amount bigint, remaining bigint, refunded bigint)
    ORDER BY charge_entry_id
    ON CONFLICT (charge_entry_id) DO UPDATE SET remaining = excluded.remaining, refunded = excluded.refunded`;
}

export interface NewDebtPayment {
  charge_entry_id: string;
  entry_id: string;
  batch_id: string;
  amount: string;
}

/** Which batch paid which debt, in which entry (append-only). */
export async function insertDebtPayments(tx: Tx, rows: NewDebtPayment[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    INSERT INTO debt_payments (charge_entry_id, entry_id, batch_id, amount)
    SELECT charge_entry_id, entry_id, batch_id, amount
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb) AS r(charge_entry_id bigint, entry_id bigint, batch_id bigint, amount bigint)`;
}
