import type { Sql } from '../../db/client.ts';

/**
 * Gives the next committed outbox rows their delivery `seq` (the feed order, docs/push.md "The feed") and
 * returns how many it sequenced and the new head.
 *
 * The lock is taken in its own statement, so the sequencing statement's snapshot is taken after the previous
 * sequencer committed: it sees that one's marks and every row whose transaction committed before it started.
 * A row of a transaction still running is invisible here and gets a larger seq in a later run — that is what
 * makes `seq > N` safe for readers, whatever order outbox_ids were drawn in. Within a run, rows go in outbox_id
 * order, which per account is commit order (ids are drawn under the account's row lock).
 */
export async function sequenceOutbox(sql: Sql, limit: number): Promise<{ sequenced: number; head: bigint }> {
  return sql.begin(async (tx) => {
    const [mark] = await tx<{ seq: bigint }[]>`SELECT seq FROM outbox_feed WHERE mark = 'sequenced' FOR UPDATE`;
    const [res] = await tx<{ head: bigint; sequenced: bigint }[]>`
      WITH picked AS (
        SELECT outbox_id, row_number() OVER (ORDER BY outbox_id) AS rn
        FROM outbox WHERE seq IS NULL ORDER BY outbox_id LIMIT ${limit}
      ), moved AS (
        UPDATE outbox o SET seq = ${mark!.seq}::bigint + p.rn
        FROM picked p WHERE o.outbox_id = p.outbox_id
        RETURNING o.seq
      )
      UPDATE outbox_feed SET seq = seq + (SELECT count(*) FROM moved) WHERE mark = 'sequenced'
      RETURNING seq AS head, (SELECT count(*) FROM moved) AS sequenced`;
    return { sequenced: Number(res!.sequenced), head: res!.head };
  });
}
