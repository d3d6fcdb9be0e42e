import { z } from 'zod';
import { amountSchema, descriptionSchema, idSchema, isoTimestamp, plainString } from '../common.ts';

export const grantSchema = z
  .object({
    type: z.literal('grant'),
    event_id: idSchema,
    user_id: idSchema,
    asset: idSchema,
    amount: amountSchema,
    /** recharge, purchase, gift, compensation, reward, … */
    source: idSchema,
    source_id: idSchema.optional(),
    /** Defaults to the asset's default_expiry_days; null = never. */
    expires_at: isoTimestamp.nullable().optional(),
    description: descriptionSchema.optional(),
  })
  .strict();

export const rewardEventSchema = z
  .object({
    type: z.literal('reward.event'),
    event_id: idSchema,
    event_type: plainString(128).min(1),
    /** Missing or empty: the newest version the reward rule lists. */
    event_version: plainString(32).optional(),
    receiver_user_id: idSchema,
    source_ref_id: idSchema,
    occurred_at: isoTimestamp.optional(),
  })
  .strict();

export const grantsJobSchema = z.discriminatedUnion('type', [grantSchema, rewardEventSchema]);

export type GrantPayload = z.infer<typeof grantSchema>;
export type RewardEventPayload = z.infer<typeof rewardEventSchema>;
export type GrantsJob = z.infer<typeof grantsJobSchema>;
