import type { Tx } from '../../db/client.ts';
import type { OutboxEvent } from '../message.ts';

/** Arbitrary but fixed: the advisory lock that makes one relay at a time run per database. */
const RELAY_LOCK = 7_336_104_211n;

/**
 * Marks the oldest unrelayed rows relayed and returns them, in outbox order. Called inside the transaction
 * that publishes them: if publishing fails or the process dies before commit, the marks roll back and the
 * rows are relayed again (at-least-once; clients dedupe on the id).
 *
 * One relay at a time (the advisory lock waits, it does not skip): an account's rows get their ids while its
 * ledger lock is held, so in id order they are in commit order, and a single relay publishes them in that order.
 */
export async function claimOutbox(tx: Tx, limit: number): Promise<OutboxEvent[]> {
  await tx`SELECT pg_advisory_xact_lock(${RELAY_LOCK.toString()}::bigint)`;
  const rows = await tx<OutboxEvent[]>`
    UPDATE outbox o SET relayed_at = clock_timestamp()
    FROM (
      SELECT outbox_id FROM outbox WHERE relayed_at IS NULL ORDER BY outbox_id LIMIT ${limit}
    ) c
    WHERE o.outbox_id = c.outbox_id
    RETURNING o.outbox_id, o.user_id, o.type, o.data, o.created_at`;
  return rows.sort((a, b) => (a.outbox_id < b.outbox_id ? -1 : 1));
}
