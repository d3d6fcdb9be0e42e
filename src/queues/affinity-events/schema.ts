import { z } from 'zod';
import { idSchema, isoTimestamp, plainString, textSchema } from '../common.ts';
import { METADATA_LIMITS, freeFormProblem } from '../free-form.ts';

/** Most units one per-unit event may carry (a gift of 1e6 items is already absurd; beyond is a bug upstream). */
export const MAX_UNITS = 1_000_000;

/**
 * Free-form context from the caller; only `units` (for per_unit rules) has a meaning to tally. At most 16 KB of JSON
 * and 32 levels deep, strings and keys like any payload string (contract v2 §3) — checked on the value as sent,
 * before zod copies it (zod drops a `__proto__` key silently; it is refused instead).
 */
export const affinityMetadataSchema = z
  .unknown()
  .superRefine((m, ctx) => {
    const problem = freeFormProblem(m, METADATA_LIMITS);
    if (problem) ctx.addIssue({ code: 'custom', message: `metadata: ${problem}` });
  })
  .pipe(
    z
      .object({ units: z.number().int('units must be an integer').min(1, 'units must be at least 1').max(MAX_UNITS).optional() })
      .catchall(z.unknown()),
  );

export const affinityEventSchema = z
  .object({
    type: z.literal('affinity.event'),
    event_id: idSchema,
    user_id: idSchema,
    device_id: idSchema,
    rule_key: idSchema,
    /** Where the event came from (device, phone, …): logged and pushed, never interpreted. */
    source: plainString(64).min(1),
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
