import type { Db } from '../../db/client.ts';

export interface DeadLetter {
  queue: string;
  job_id: string;
  event_id: string | null;
  reason_code: string;
  reason: string;
  payload: unknown;
}

/** Durable record of a permanently failed job; a job failing again bumps its count. */
export async function recordDeadLetters(db: Db, rows: DeadLetter[]): Promise<void> {
  if (rows.length === 0) return;
  await db`
    INSERT INTO dead_letters (queue, job_id, event_id, reason_code, reason, payload)
    SELECT queue, job_id, event_id, reason_code, reason, payload
    FROM jsonb_to_recordset(${db.json(rows as never)}::jsonb)
      AS r(queue text, job_id text, event_id text, reason_code text, reason text, payload jsonb)
    ON CONFLICT (queue, job_id) DO UPDATE SET reason_code = excluded.reason_code, reason = excluded.reason,
      payload = excluded.payload, failures = dead_letters.failures + 1, last_failed_at = now()`;
}
