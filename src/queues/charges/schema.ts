import { z } from 'zod';
import { amountSchema, idSchema, isoTimestamp, textSchema } from '../common.ts';

export const usageSchema = z
  .object({
    seconds: z.number().finite().min(0).optional(),
    input_seconds: z.number().finite().min(0).optional(),
    char_count: z.number().int().min(0).optional(),
    input_tokens: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    output_tokens: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    model: z.string().min(1).max(128).optional(),
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
    description: textSchema.optional(),
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
