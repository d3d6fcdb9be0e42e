import { z } from 'zod';
import { amountSchema, descriptionSchema, idSchema, isoTimestamp, plainString, textSchema } from '../common.ts';

/**
 * Bounds on reported usage (decided for issue 10): far beyond any real piece of work, yet small enough that no
 * price, stored value or hourly usage sum can overflow a PostgreSQL bigint (1e20 seconds once did, failing its
 * whole batch). A charge beyond them is bad input.
 */
export const USAGE_LIMITS = {
  /** ~31.7 years of audio or video in one charge. */
  seconds: 1e9,
  /** A gigabyte of text. */
  charCount: 1e9,
  /** A trillion tokens in one call: 9 million such calls in one user-hour before the rollup's bigint could overflow. */
  tokens: 1e12,
} as const;

export const usageSchema = z
  .object({
    seconds: z.number().finite().min(0).max(USAGE_LIMITS.seconds).optional(),
    input_seconds: z.number().finite().min(0).max(USAGE_LIMITS.seconds).optional(),
    char_count: z.number().int().min(0).max(USAGE_LIMITS.charCount).optional(),
    input_tokens: z.number().int().min(0).max(USAGE_LIMITS.tokens).optional(),
    output_tokens: z.number().int().min(0).max(USAGE_LIMITS.tokens).optional(),
    model: plainString(128).min(1).optional(),
  })
  .strict();

export const chargeSchema = z
  .object({
    type: z.literal('charge'),
    event_id: idSchema,
    user_id: idSchema,
    asset: idSchema,
    source_type: idSchema,
    source_id: idSchema,
    usage: usageSchema.optional(),
    amount: amountSchema.optional(),
    policy: z.enum(['postpaid', 'guarded']).optional(),
    hold_id: idSchema.optional(),
    occurred_at: isoTimestamp.optional(),
    description: descriptionSchema.optional(),
  })
  .strict()
  .refine((c) => c.policy !== undefined || c.hold_id !== undefined, {
    message: 'policy is required (postpaid or guarded) unless hold_id is given',
    path: ['policy'],
  });

export const refundSchema = z
  .object({
    type: z.literal('refund'),
    event_id: idSchema,
    charge_event_id: idSchema,
    amount: amountSchema.optional(),
    reason: textSchema.optional(),
  })
  .strict();

export const chargesJobSchema = z.discriminatedUnion('type', [chargeSchema, refundSchema]);

export type ChargePayload = z.infer<typeof chargeSchema>;
export type RefundPayload = z.infer<typeof refundSchema>;
export type ChargesJob = z.infer<typeof chargesJobSchema>;
export type UsagePayload = z.infer<typeof usageSchema>;
