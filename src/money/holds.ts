import type { ConfigCache } from '../config/store.ts';
import type { Sql } from '../db/client.ts';
import { loadHolds, type HoldRow } from '../ledger/sql/holds.ts';
import type { HoldOutcome } from './hold-batch.ts';
import { applyAlone, type HoldBatcher } from './hold-batcher.ts';
import type { HoldRequest } from './hold-request.ts';

export { MAX_HOLD_TTL_SECONDS, holdRequestSchema, priceHold, type HoldRequest } from './hold-request.ts';

export type PlaceResult = { kind: 'created' | 'existing'; hold: HoldRow } | { kind: 'insufficient'; required: bigint; available: bigint };

/** Where a hold request is applied: the process's batcher (group commit), or a transaction of its own. */
export type HoldRunner = Pick<HoldBatcher, 'apply'>;

/** A runner applying each request in its own transaction. */
export function soloRunner(sql: Sql, configs: ConfigCache): HoldRunner {
  return { apply: (op) => applyAlone(sql, configs, op) };
}

function settled<K extends HoldOutcome['kind']>(outcome: HoldOutcome, kinds: K[]): Extract<HoldOutcome, { kind: K }> {
  if (outcome.kind === 'failed') throw outcome.error;
  if (!(kinds as string[]).includes(outcome.kind)) throw new Error(`unexpected hold outcome ${outcome.kind}`);
  return outcome as Extract<HoldOutcome, { kind: K }>;
}

/**
 * Reserves the estimate atomically: under the account row's lock (the same lock every ledger transaction
 * and every other hold of the account takes), available = exact balance − active holds must cover it. So
 * concurrent holds queue on the lock and can never together exceed the balance. Idempotent by event_id: a
 * replay is answered from the hold placed, before any price is looked up. Bad input and a conflict throw HttpError.
 */
export async function placeHold(sql: Sql, configs: ConfigCache, req: HoldRequest, runner: HoldRunner = soloRunner(sql, configs)): Promise<PlaceResult> {
  return settled(await runner.apply({ op: 'place', req }), ['created', 'existing', 'insufficient']);
}

/** Releases an active hold (idempotent); a settled, released or expired hold is returned as it is. */
export async function releaseHoldById(sql: Sql, holdId: string, runner: HoldRunner): Promise<HoldRow | undefined> {
  const [found] = await loadHolds(sql, [holdId]);
  if (!found) return undefined;
  if (found.status !== 'active') return found;
  // Under the account's lock, ordered with placements, settlements and guarded charges of the same account.
  return settled(await runner.apply({ op: 'release', holdId, userId: found.user_id, asset: found.asset }), ['released']).hold;
}

export async function getHold(sql: Sql, holdId: string): Promise<HoldRow | undefined> {
  const [found] = await loadHolds(sql, [holdId]);
  return found;
}

/** The wire shape of a hold; a hold past expires_at reads as expired whether or not the sweep ran. */
export function holdView(h: HoldRow) {
  const status = h.status === 'active' && h.lapsed ? 'expired' : h.status;
  return {
    hold_id: h.hold_id,
    event_id: h.event_id,
    user_id: h.user_id,
    asset: h.asset,
    source_type: h.source_type,
    amount: Number(h.amount),
    status,
    expires_at: h.expires_at.toISOString(),
    settle_event_id: h.settle_event_id,
    settled_amount: h.settled_amount === null ? null : Number(h.settled_amount),
    created_at: h.created_at.toISOString(),
  };
}

