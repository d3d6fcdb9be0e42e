import { z } from 'zod';
import type { ConfigDocument } from '../config/document.ts';
import { MAX_AMOUNT } from '../domain/account.ts';
import { PricingError, quoteMaxCost } from '../domain/pricing.ts';
import { HttpError } from '../errors.ts';
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

/**
 * The max-cost estimate a new hold reserves, by the config in force (throws a 422 HttpError for an unknown asset or
 * source_type, or a usage that cannot be priced). Only for holds not placed yet: a replay never gets here.
 */
export function priceHold(doc: ConfigDocument, req: HoldRequest): bigint {
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
