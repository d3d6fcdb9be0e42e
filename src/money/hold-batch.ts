import { canonicalJson, sha256, type ConfigCache } from '../config/store.ts';
import type { ConfigDocument } from '../config/document.ts';
import type { Sql, Tx } from '../db/client.ts';
import { HttpError } from '../errors.ts';
import { lockAccounts, type AccountRow } from '../ledger/sql/accounts.ts';
import { loadHolds, type HoldRow } from '../ledger/sql/holds.ts';
import { findHoldsByEvents, insertHolds, releaseHolds, roomOfAccounts, roomOfPairs, type NewHoldRow } from './hold-sql.ts';
import { priceHold, type HoldRequest } from './hold-request.ts';

/** One hold request of a run: place a hold, or release an active one (looked up before, so its account is known). */
export type HoldOp = ({ op: 'place'; req: HoldRequest } | { op: 'release'; holdId: string; userId: string; asset: string }) & {
  /** When the request arrived (Date.now()): its retry budget counts from then. */
  arrived?: number;
};

export type HoldOutcome =
  | { kind: 'created' | 'existing'; hold: HoldRow }
  | { kind: 'insufficient'; required: bigint; available: bigint }
  /** The hold after the release (or as it was, if it was no longer active). */
  | { kind: 'released'; hold: HoldRow }
  /** This request's own error (bad input, a conflict): it fails alone, its run-mates are not affected. */
  | { kind: 'failed'; error: unknown };

const accountKey = (userId: string, asset: string) => `${userId}\u0000${asset}`;

/** What a place request still needs once replays and bad input are answered: its price and payload hash. */
interface Pending {
  index: number;
  req: HoldRequest;
  hash: string;
  amount: bigint;
}

/** The state a run's transaction decides on, under its accounts' locks. */
interface Locked {
  accounts: Map<string, AccountRow>;
  /** Per account: what may still be held (balance − lapsed − held), lowered by each hold placed in this run. */
  room: Map<string, bigint>;
  releasing: Map<string, HoldRow>;
}

/**
 * Applies a run of hold requests in one transaction, with the same results as applying them one by one in the run's
 * order (the batcher keeps each account's arrival order):
 *
 * 1. replays — holds already placed under an event_id are looked up first and answered as they are (a changed body:
 *    409), before any config-dependent check (CONTRACT v2 §3: a replay answers the original result even when the price
 *    rule it was placed under is gone); the rest are priced by the config in force (bad input fails alone);
 * 2. lock — the run's accounts, in (user_id, asset) order like every ledger transaction, so holds, settles and guarded
 *    charges of one account queue on one row lock and concurrent runs never deadlock;
 * 3. decide — in the run's order: a hold is placed only while available (balance − lapsed − held, lowered by the
 *    holds placed before it in the run, raised by the releases before it) covers it and the account has no debt;
 * 4. write — new holds and releases, one statement each; commit.
 *
 * Errors that belong to the whole run (a transient fault) are thrown; the caller retries the run.
 */
export async function applyHoldBatch(sql: Sql, configs: ConfigCache, ops: HoldOp[]): Promise<HoldOutcome[]> {
  const out: (HoldOutcome | undefined)[] = new Array(ops.length);
  const releases = ops.flatMap((o, index) => (o.op === 'release' ? [{ index, ...o }] : []));
  // Everything on the transaction's one connection: a run never waits for a second one from the pool (with every
  // connection in a run, such waits would deadlock the pool).
  await sql.begin(async (tx) => {
    const pending = await answerReplaysAndPrice(tx, configs, ops, out);
    if (pending.length === 0 && releases.length === 0) return;
    const locked = await lockRun(tx, pending, releases);
    const plan = decide(ops, pending, locked, out);
    const [inserted, released] = await Promise.all([insertHolds(tx, plan.inserts), releaseHolds(tx, plan.releases)]);
    fillWritten(plan, inserted, released, out);
  });
  return out as HoldOutcome[];
}

/** Phase 1: replays answered from the holds table, the others priced (or failed alone). */
async function answerReplaysAndPrice(tx: Tx, configs: ConfigCache, ops: HoldOp[], out: (HoldOutcome | undefined)[]): Promise<Pending[]> {
  const places = ops.flatMap((o, index) => (o.op === 'place' ? [{ index, req: o.req }] : []));
  if (places.length === 0) return [];
  const [found, { doc }] = await Promise.all([findHoldsByEvents(tx, places.map((p) => p.req.event_id)), configs.get(tx)]);
  const existing = new Map(found.map((h) => [h.event_id, h]));
  const pending: Pending[] = [];
  for (const { index, req } of places) {
    const hash = sha256(canonicalJson(req));
    const hold = existing.get(req.event_id);
    if (hold) out[index] = hold.payload_hash === hash ? { kind: 'existing', hold } : { kind: 'failed', error: conflict(req.event_id) };
    else {
      const amount = tryPrice(doc, req);
      if (typeof amount === 'bigint') pending.push({ index, req, hash, amount });
      else out[index] = { kind: 'failed', error: amount };
    }
  }
  return pending;
}

function tryPrice(doc: ConfigDocument, req: HoldRequest): bigint | HttpError {
  try {
    return priceHold(doc, req);
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
}

function conflict(eventId: string): HttpError {
  return new HttpError(409, 'idempotency_conflict', `event_id "${eventId}" was already used with a different hold request`);
}

/**
 * Phase 2: the run's accounts locked in order, and under those locks their room and the holds to release. The reads
 * are pipelined behind the lock statement on the transaction's connection: PostgreSQL runs them after it, each with a
 * snapshot taken once the locks are held (READ COMMITTED), so they see everything the lock waited for. Only when
 * accounts had to be created (their locks come from statements sent after the reads) is the room read again.
 */
async function lockRun(tx: Tx, pending: Pending[], releases: { holdId: string; userId: string; asset: string }[]): Promise<Locked> {
  const pairs = [...pending.map((p) => ({ userId: p.req.user_id, asset: p.req.asset })), ...releases.map((r) => ({ userId: r.userId, asset: r.asset }))];
  let created = false;
  const [rows, early, releasing] = await Promise.all([
    lockAccounts(tx, pairs, () => (created = true)),
    roomOfPairs(tx, pairs),
    releases.length > 0 ? loadHolds(tx, releases.map((r) => r.holdId)) : [],
  ]);
  const rooms = created ? await roomOfAccounts(tx, rows.map((a) => a.account_id)) : early;
  const accounts = new Map(rows.map((a) => [accountKey(a.user_id, a.asset), a]));
  const room = new Map<string, bigint>();
  for (const [key, a] of accounts) {
    const r = rooms.get(a.account_id) ?? { lapsed: 0n, held: 0n };
    room.set(key, a.balance - r.lapsed - r.held);
  }
  return { accounts, room, releasing: new Map(releasing.map((h) => [h.hold_id, h])) };
}

interface Plan {
  inserts: NewHoldRow[];
  releases: string[];
  /** Requests answered by a hold this run writes: by event_id (placed) or hold_id (released). */
  byEvent: { index: number; eventId: string; kind: 'created' | 'existing' }[];
  byRelease: { index: number; holdId: string }[];
}

/** Phase 3: in the run's order, the same decisions one transaction per request would take one after the other. */
function decide(ops: HoldOp[], pending: Pending[], locked: Locked, out: (HoldOutcome | undefined)[]): Plan {
  const plan: Plan = { inserts: [], releases: [], byEvent: [], byRelease: [] };
  const placedHash = new Map<string, string>();
  const pendingAt = new Map(pending.map((p) => [p.index, p]));
  ops.forEach((op, index) => {
    if (op.op === 'release') {
      const hold = locked.releasing.get(op.holdId)!;
      if (hold.status !== 'active' || plan.releases.includes(hold.hold_id)) {
        if (hold.status !== 'active') out[index] = { kind: 'released', hold };
        else plan.byRelease.push({ index, holdId: hold.hold_id });
        return;
      }
      plan.releases.push(hold.hold_id);
      plan.byRelease.push({ index, holdId: hold.hold_id });
      const key = accountKey(hold.user_id, hold.asset);
      // A lapsed hold no longer counted: releasing it frees nothing.
      if (!hold.lapsed) locked.room.set(key, locked.room.get(key)! + hold.amount);
      return;
    }
    const p = pendingAt.get(index);
    if (!p) return; // answered in phase 1
    const earlier = placedHash.get(p.req.event_id);
    if (earlier !== undefined) {
      // The same event_id twice in one run: the second is a replay of the first.
      if (earlier === p.hash) plan.byEvent.push({ index, eventId: p.req.event_id, kind: 'existing' });
      else out[index] = { kind: 'failed', error: conflict(p.req.event_id) };
      return;
    }
    const key = accountKey(p.req.user_id, p.req.asset);
    const acct = locked.accounts.get(key)!;
    const available = locked.room.get(key)!;
    // An overdrawn account holds nothing until topped up (its available balance is negative anyway).
    if (available < p.amount || acct.debt > 0n) {
      out[index] = { kind: 'insufficient', required: p.amount, available };
      return;
    }
    locked.room.set(key, available - p.amount);
    placedHash.set(p.req.event_id, p.hash);
    plan.byEvent.push({ index, eventId: p.req.event_id, kind: 'created' });
    plan.inserts.push({
      event_id: p.req.event_id,
      payload_hash: p.hash,
      account_id: String(acct.account_id),
      user_id: p.req.user_id,
      asset: p.req.asset,
      source_type: p.req.source_type,
      usage_estimate: p.req.usage_estimate ?? null,
      amount: String(p.amount),
      ttl_seconds: p.req.ttl_seconds,
    });
  });
  return plan;
}

/** Phase 4's rows handed to the requests that wait for them. */
function fillWritten(plan: Plan, inserted: HoldRow[], released: HoldRow[], out: (HoldOutcome | undefined)[]): void {
  const byEvent = new Map(inserted.map((h) => [h.event_id, h]));
  const byId = new Map(released.map((h) => [h.hold_id, h]));
  for (const { index, eventId, kind } of plan.byEvent) out[index] = { kind, hold: byEvent.get(eventId)! };
  for (const { index, holdId } of plan.byRelease) out[index] = { kind: 'released', hold: byId.get(holdId)! };
}
