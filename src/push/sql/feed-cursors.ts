import type { Db } from '../../db/client.ts';

/**
 * Positions of the feed's consumers other than live push (docs/push.md "The feed"). A registered consumer's
 * position holds back outbox-prune: no row with a seq above it is deleted until it has moved past.
 */

/**
 * Registers `consumer` (idempotent) and returns its position: a new consumer starts at the head (it sees rows
 * sequenced from now on); an existing one keeps where it was.
 */
export async function registerFeedConsumer(db: Db, consumer: string): Promise<bigint> {
  await db`
    INSERT INTO outbox_cursors (consumer, position)
    SELECT ${consumer}, seq FROM outbox_feed WHERE mark = 'sequenced'
    ON CONFLICT (consumer) DO NOTHING`;
  // A separate statement: it sees the row whoever inserted it (a concurrent registration included).
  const position = await feedCursor(db, consumer);
  if (position === null) throw new Error(`feed consumer ${consumer} vanished while registering`);
  return position;
}

/** Moves a consumer's position forward (never back: a late, slower writer cannot rewind it). */
export async function advanceFeedCursor(db: Db, consumer: string, position: bigint): Promise<void> {
  await db`
    UPDATE outbox_cursors SET position = ${position}, updated_at = clock_timestamp()
    WHERE consumer = ${consumer} AND position < ${position}`;
}

export async function feedCursor(db: Db, consumer: string): Promise<bigint | null> {
  const [row] = await db<{ position: bigint }[]>`SELECT position FROM outbox_cursors WHERE consumer = ${consumer}`;
  return row ? row.position : null;
}

/** A retired consumer must be dropped, or it holds the outbox for ever. */
export async function dropFeedConsumer(db: Db, consumer: string): Promise<boolean> {
  const res = await db`DELETE FROM outbox_cursors WHERE consumer = ${consumer}`;
  return res.count > 0;
}
