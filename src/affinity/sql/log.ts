import type { Tx } from '../../db/client.ts';

export interface LogRow {
  user_id: string;
  device_id: string;
  kind: 'event' | 'adjust' | 'decay';
  event_id: string | null;
  rule_key: string | null;
  source: string | null;
  outcome: string;
  change: number;
  before: number;
  after: number;
  level_before: number;
  level_after: number;
  day: string | null;
  occurred_at: string;
  operator_id: string | null;
  reason: string | null;
}

/**
 * Appends score changes; the table refuses updates and deletes. `created_at` is tally_now() read once for the
 * statement (an InitPlan), not per row as the column default would be (~5 µs a row, measured).
 */
export async function insertLog(tx: Tx, rows: LogRow[]): Promise<void> {
  if (rows.length === 0) return;
  // log_id follows the order given (per device it is the order of the changes): the chain check relies on it.
  // Written out, not spread (`{ ...r, seq }` copies property by property, the slow way: µs a row).
  const ordered = rows.map((r, seq) => ({
    user_id: r.user_id, device_id: r.device_id, kind: r.kind, event_id: r.event_id, rule_key: r.rule_key, source: r.source,
    outcome: r.outcome, change: r.change, before: r.before, after: r.after, level_before: r.level_before, level_after: r.level_after,
    day: r.day, occurred_at: r.occurred_at, operator_id: r.operator_id, reason: r.reason, seq,
  }));
  await tx`
    INSERT INTO affinity_log (user_id, device_id, kind, event_id, rule_key, source, outcome, change, before, after,
      level_before, level_after, day, occurred_at, operator_id, reason, created_at)
    SELECT user_id, device_id, kind, event_id, rule_key, source, outcome, change, before, after,
      level_before, level_after, day, occurred_at, operator_id, reason, (SELECT tally_now())
    FROM jsonb_to_recordset(${tx.json(ordered as never)}::jsonb) AS r(user_id text, device_id text, kind text, event_id text,
      rule_key text, source text, outcome text, change int, before int, after int, level_before int, level_after int,
      day date, occurred_at timestamptz, operator_id text, reason text, seq int)
    ORDER BY seq`;
}
