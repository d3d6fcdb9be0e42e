import { z } from 'zod';
import { canonicalJson, sha256, type ConfigCache } from '../config/store.ts';
import type { Sql } from '../db/client.ts';
import { MAX_AMOUNT } from '../domain/account.ts';
import { PricingError, quoteMaxCost } from '../domain/pricing.ts';
import { HttpError } from '../errors.ts';
import { lockAccounts } from '../ledger/sql/accounts.ts';
import { findHoldByEvent, insertHold, lapsedAndHeld, loadHolds, releaseHold, type HoldRow } from '../ledger/sql/holds.ts';
import { usageSchema } from '../queues/charges/schema.ts';
import { amountSchema, idSchema } from '../queues/common.ts';

export const MAX_HOLD_TTL_SECONDS = 7 * 24 * 3600;

export const holdRequestSchema = z
  .object({
    event_id: idSchema,
    user_id: idSchema,
    asset: idSchema,
    source_type: idSchema,
    /** The most the work can use (e.g. max_tokens as output_tokens): priced like a quote. */
    usage_estimate: usageSchema.optional(),
    /** Reserve exactly this instead of pricing usage_estimate. */
    amount: amountSchema.optional(),
    ttl_seconds: z.number().int().min(1).max(MAX_HOLD_TTL_SECONDS),
  })
  .strict();
export type HoldRequest = z.infer<typeof holdRequestSchema>;

export type PlaceResult = { kind: 'created' | 'existing'; hold: HoldRow } | { kind: 'insufficient'; required: bigint; available: bigint };

/** The max-cost estimate a hold reserves, by the price rules in force now. */
async function holdAmount(sql: Sql, configs: ConfigCache, req: HoldRequest): Promise<bigint> {
  const { doc } = await configs.get(sql);
  if (!doc.assets[req.asset]) throw new HttpError(422, 'unknown_asset', `unknown asset "${req.asset}"`);
  if (req.amount !== undefined) return BigInt(req.amount);
  const rule = doc.pricing[req.asset]?.[req.source_type];
  if (!rule) throw new HttpError(422, 'unknown_source_type', `no pricing for source_type "${req.source_type}" on asset "${req.asset}" and no amount given`);
  let amount: bigint;
  try {
    amount = quoteMaxCost(rule, req.usage_estimate);
  } catch (err) {
    if (err instanceof PricingError) throw new HttpError(422, 'invalid_usage', err.message);
    throw err;
  }
  // Amounts are exact JSON numbers only up to 2^53 − 1, and no balance can ever cover more.
  if (amount > MAX_AMOUNT) throw new HttpError(422, 'invalid_usage', `the estimate (${amount}) exceeds 2^53 − 1`);
  return amount;
}

/**
 * Reserves the estimate atomically: under the account row's lock (the same lock every ledger transaction
 * and every other hold of the account takes), available = exact balance − active holds must cover it. So
 * concurrent holds queue on the lock and can never together exceed the balance. Idempotent by event_id.
 */
export async function placeHold(sql: Sql, configs: ConfigCache, req: HoldRequest): Promise<PlaceResult> {
  const amount = await holdAmount(sql, configs, req);
  const payloadHash = sha256(canonicalJson(req));
  return (await sql.begin(async (tx) => {
    const [acct] = await lockAccounts(tx, [{ userId: req.user_id, asset: req.asset }]);
    // Pipelined on the transaction's connection, after the lock.
    const [existing, { lapsed, held }] = await Promise.all([findHoldByEvent(tx, req.event_id), lapsedAndHeld(tx, acct!.account_id)]);
    if (existing) {
      if (existing.payload_hash !== payloadHash) {
        throw new HttpError(409, 'idempotency_conflict', `event_id "${req.event_id}" was already used with a different hold request`);
      }
      return { kind: 'existing', hold: existing };
    }
    const available = acct!.balance - lapsed - held;
    // An overdrawn account holds nothing until topped up (its available balance is negative anyway).
    if (available < amount || acct!.debt > 0n) return { kind: 'insufficient', required: amount, available };
    const hold = await insertHold(tx, {
      event_id: req.event_id,
      payload_hash: payloadHash,
      account_id: acct!.account_id,
      user_id: req.user_id,
      asset: req.asset,
      source_type: req.source_type,
      usage_estimate: req.usage_estimate,
      amount,
      ttl_seconds: req.ttl_seconds,
    });
    return { kind: 'created', hold };
  })) as PlaceResult;
}

/** Releases an active hold (idempotent); a settled, released or expired hold is returned as it is. */
export async function releaseHoldById(sql: Sql, holdId: string): Promise<HoldRow | undefined> {
  const [found] = await loadHolds(sql, [holdId]);
  if (!found) return undefined;
  if (found.status !== 'active') return found;
  return (await sql.begin(async (tx) => {
    // The account lock orders the release with settlements and guarded charges of the same account.
    await lockAccounts(tx, [{ userId: found.user_id, asset: found.asset }]);
    await releaseHold(tx, holdId);
    const [after] = await loadHolds(tx, [holdId]);
    return after;
  })) as HoldRow;
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
