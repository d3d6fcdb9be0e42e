import type { Db } from '../../db/client.ts';

export interface KeyRef {
  scope: string;
  key: string;
}

export interface StoredKey {
  request_hash: string;
  status: 'in_progress' | 'done';
  response_status: number | null;
  response_body: string | null;
  /** Whole seconds until an in-progress claim's lease passes (0 once it has). */
  lease_left: number;
}

/**
 * Claims a key for `owner`: a new row, or an in-progress row of the same request whose lease has passed (its
 * owner died between claim and answer). True when `owner` holds the claim now. Atomic: of two concurrent claims
 * of one key exactly one wins (the primary key), whatever the number of processes.
 */
export async function claimKey(db: Db, ref: KeyRef, requestHash: string, owner: string, leaseSeconds: number): Promise<boolean> {
  const rows = await db<{ owner: string }[]>`
    INSERT INTO idempotency_keys (scope, idem_key, request_hash, status, owner, lease_until)
    VALUES (${ref.scope}, ${ref.key}, ${requestHash}, 'in_progress', ${owner}, tally_now() + make_interval(secs => ${leaseSeconds}))
    ON CONFLICT (scope, idem_key) DO UPDATE SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until
      WHERE idempotency_keys.status = 'in_progress' AND idempotency_keys.lease_until <= tally_now()
        AND idempotency_keys.request_hash = EXCLUDED.request_hash
    RETURNING owner`;
  return rows[0]?.owner === owner;
}

export async function readKey(db: Db, ref: KeyRef): Promise<StoredKey | undefined> {
  const [row] = await db<StoredKey[]>`
    SELECT request_hash, status, response_status, response_body,
      greatest(0, ceil(extract(epoch FROM lease_until - tally_now())))::int AS lease_left
    FROM idempotency_keys WHERE scope = ${ref.scope} AND idem_key = ${ref.key}`;
  return row;
}

/** Stores the answer, if `owner` still holds the claim (a slower owner overtaken after its lease stores nothing). */
export async function completeKey(db: Db, ref: KeyRef, owner: string, status: number, body: string): Promise<boolean> {
  const rows = await db`
    UPDATE idempotency_keys SET status = 'done', response_status = ${status}, response_body = ${body}
    WHERE scope = ${ref.scope} AND idem_key = ${ref.key} AND owner = ${owner} AND status = 'in_progress'
    RETURNING 1`;
  return rows.length === 1;
}

/** Gives the claim up (the request failed with a 5xx): the next request with the key runs again at once. */
export async function releaseKey(db: Db, ref: KeyRef, owner: string): Promise<void> {
  await db`DELETE FROM idempotency_keys WHERE scope = ${ref.scope} AND idem_key = ${ref.key} AND owner = ${owner} AND status = 'in_progress'`;
}

/** Deletes up to `limit` keys older than the retention; returns how many. */
export async function pruneKeys(db: Db, retentionHours: number, limit: number): Promise<number> {
  const rows = await db`
    DELETE FROM idempotency_keys WHERE ctid IN (
      SELECT ctid FROM idempotency_keys WHERE created_at < tally_now() - make_interval(hours => ${retentionHours}) LIMIT ${limit})
    RETURNING 1`;
  return rows.length;
}
