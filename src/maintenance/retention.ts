import type { Env } from '../config/env.ts';
import type { Sql } from '../db/client.ts';
import { pushSettings } from '../push/settings.ts';

/**
 * How long tally keeps what it does not need for ever (docs/operations.md "Retention"). The ledger, its decisions
 * (processed_events: the exactly-once record), allocations and the admin audit are kept for ever; these three
 * are pruned by maintenance tasks, in chunks of `chunk` rows, each chunk its own short transaction:
 * - outbox: published rows older than `outboxHours`, never one a registered feed consumer (webhooks) has not
 *   passed, never one not yet published (`outbox-prune`, src/push/sql/prune-outbox.ts);
 * - Idempotency-Key records older than `idempotencyHours` (≥ 24, the contract's promise; `idempotency-keys`);
 * - dead letters whose last failure is older than `deadLetterDays`, and the oldest beyond `deadLetterMaxRows`
 *   (`dead-letters`): a flood of bad input cannot grow the table without bound.
 */
export interface Retention {
  outboxHours: number;
  idempotencyHours: number;
  /** 0 = kept for ever. */
  deadLetterDays: number;
  /** 0 = no cap. */
  deadLetterMaxRows: number;
  chunk: number;
}

/** The environment's retention; without one (a bench or a test calling a task directly) the defaults. */
export function retentionOf(env?: Env): Retention {
  return {
    outboxHours: env?.TALLY_OUTBOX_RETENTION_HOURS ?? pushSettings.retentionHours,
    idempotencyHours: env?.TALLY_IDEMPOTENCY_RETENTION_HOURS ?? 24,
    deadLetterDays: env?.TALLY_DEAD_LETTER_RETENTION_DAYS ?? 90,
    deadLetterMaxRows: env?.TALLY_DEAD_LETTER_MAX_ROWS ?? 1_000_000,
    chunk: env?.TALLY_PRUNE_CHUNK ?? 5000,
  };
}

export interface DeadLetterPrune {
  task: 'dead-letters';
  retention_days: number;
  max_rows: number;
  pruned_by_age: number;
  pruned_over_cap: number;
  kept: number;
}

/**
 * Prunes dead letters past the retention, then the oldest beyond the cap, `chunk` rows per statement (each
 * statement its own transaction, so no lock is held for long and the workers' inserts never wait behind it).
 * Age is the last failure: a job failing again restarts its clock.
 */
export async function pruneDeadLetters(sql: Sql, r: Pick<Retention, 'deadLetterDays' | 'deadLetterMaxRows' | 'chunk'>): Promise<DeadLetterPrune> {
  let byAge = 0;
  if (r.deadLetterDays > 0) {
    for (;;) {
      const res = await sql`
        DELETE FROM dead_letters WHERE dead_letter_id IN (
          SELECT dead_letter_id FROM dead_letters
          WHERE last_failed_at < now() - make_interval(days => ${r.deadLetterDays}) LIMIT ${r.chunk})`;
      byAge += res.count;
      if (res.count < r.chunk) break;
    }
  }
  let overCap = 0;
  if (r.deadLetterMaxRows > 0) {
    for (;;) {
      const [c] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM dead_letters`;
      const excess = c!.n - r.deadLetterMaxRows;
      if (excess <= 0) break;
      // Oldest last failure first (dead_letters_recent, read backwards).
      const res = await sql`
        DELETE FROM dead_letters WHERE dead_letter_id IN (
          SELECT dead_letter_id FROM dead_letters ORDER BY last_failed_at, dead_letter_id LIMIT ${Math.min(excess, r.chunk)})`;
      overCap += res.count;
      if (res.count === 0) break;
    }
  }
  const [k] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM dead_letters`;
  return {
    task: 'dead-letters',
    retention_days: r.deadLetterDays,
    max_rows: r.deadLetterMaxRows,
    pruned_by_age: byAge,
    pruned_over_cap: overCap,
    kept: k!.n,
  };
}
