import { z } from 'zod';
import { idSchema, isoTimestamp, textSchema } from '../common.ts';

/** Most units one per-unit event may carry (a gift of 1e6 items is already absurd; beyond is a bug upstream). */
export const MAX_UNITS = 1_000_000;

/** Free-form context from the caller; only `units` (for per_unit rules) has a meaning to tally. */
export const affinityMetadataSchema = z
  .object({ units: z.number().int('units must be an integer').min(1, 'units must be at least 1').max(MAX_UNITS).optional() })
  .catchall(z.unknown())
  .refine((m) => JSON.stringify(m).length <= 4096, 'metadata must be at most 4 KB of JSON');

export const affinityEventSchema = z
  .object({
    type: z.literal('affinity.event'),
    event_id: idSchema,
    user_id: idSchema,
    device_id: idSchema,
    rule_key: idSchema,
    /** Where the event came from (device, phone, …): logged and pushed, never interpreted. */
    source: z.string().min(1).max(64),
    /** Drives cooldowns and natural days; default: when the job was enqueued. */
    occurred_at: isoTimestamp.optional(),
    metadata: affinityMetadataSchema.optional(),
  })
  .strict();

export const affinityAdjustSchema = z
  .object({
    type: z.literal('affinity.adjust'),
    event_id: idSchema,
    user_id: idSchema,
    device_id: idSchema,
    delta: z
      .number()
      .int('delta must be an integer')
      .min(-2_147_483_648, 'delta must be within the 32-bit integer range')
      .max(2_147_483_647, 'delta must be within the 32-bit integer range'),
    operator_id: idSchema,
    reason: textSchema.min(1, 'reason is required'),
  })
  .strict();

export const affinityJobSchema = z.discriminatedUnion('type', [affinityEventSchema, affinityAdjustSchema]);

export type AffinityEventPayload = z.infer<typeof affinityEventSchema>;
export type AffinityAdjustPayload = z.infer<typeof affinityAdjustSchema>;
export type AffinityJob = z.infer<typeof affinityJobSchema>;
