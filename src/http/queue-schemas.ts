import { affinityAdjustSchema, affinityEventSchema, affinityJobSchema } from '../queues/affinity-events/schema.ts';
import { chargeSchema, chargesJobSchema, refundSchema, usageSchema } from '../queues/charges/schema.ts';
import { idSchema, QUEUE } from '../queues/common.ts';
import { grantSchema, grantsJobSchema, rewardEventSchema } from '../queues/grants/schema.ts';
import { affinityBatchJobSchema, chargesBatchJobSchema, grantsBatchJobSchema, MAX_BATCH_EVENTS } from '../queues/batch.ts';
import { z } from 'zod';
import { apiSchemas, named } from './schemas.ts';

/**
 * The queue payloads as JSON Schemas under `components.schemas`: what a producer in Python, Go or PHP writes
 * against (BullMQ job: name = `type`, jobId = `event_id`, data = the payload). The same zod schemas the workers
 * validate with. A new payload type: name it here, and add it to its queue's union.
 */
// An id's "not all digits" is a zod refinement, which JSON Schema cannot see: say it in JSON Schema terms
// (registry metadata is merged into every schema generated from idSchema), so a foreign producer checks it too.
apiSchemas.add(idSchema, { not: { pattern: '^[0-9]+$' } });

const queued = (queue: string) => `A job on the \`${queue}\` queue (name = type, jobId = event_id).`;

named(usageSchema, 'Usage', 'Measured or estimated usage, priced by the asset\'s pricing rule for the source_type.', { input: true });
named(grantSchema, 'GrantPayload', queued(QUEUE.grants), { input: true });
named(rewardEventSchema, 'RewardEventPayload', queued(QUEUE.grants), { input: true });
named(grantsJobSchema, 'GrantsJob', `Any payload of the \`${QUEUE.grants}\` queue.`, { input: true });
named(chargeSchema, 'ChargePayload', queued(QUEUE.charges), { input: true });
named(refundSchema, 'RefundPayload', queued(QUEUE.charges), { input: true });
named(chargesJobSchema, 'ChargesJob', `Any payload of the \`${QUEUE.charges}\` queue.`, { input: true });
named(affinityEventSchema, 'AffinityEventPayload', queued(QUEUE.affinityEvents), { input: true });
named(affinityAdjustSchema, 'AffinityAdjustPayload', queued(QUEUE.affinityEvents), { input: true });
named(affinityJobSchema, 'AffinityEventsJob', `Any payload of the \`${QUEUE.affinityEvents}\` queue.`, { input: true });

const batched = (queue: string) =>
  `A batch job on the \`${queue}\` queue (name = batch, any unique jobId): 1–${MAX_BATCH_EVENTS} of its payloads, each applied ` +
  'exactly as its own job would be (exactly once by its event_id, in order per user, a bad one failing alone). Its result is ' +
  'BatchJobResult. The worker checks the envelope (this shape, member types of this queue) for the whole job and each member alone.';
named(grantsBatchJobSchema, 'GrantsBatchJob', batched(QUEUE.grants), { input: true });
named(chargesBatchJobSchema, 'ChargesBatchJob', batched(QUEUE.charges), { input: true });
named(affinityBatchJobSchema, 'AffinityEventsBatchJob', batched(QUEUE.affinityEvents), { input: true });

named(
  z.object({
    outcome: z.literal('batch'),
    results: z
      .array(z.union([z.looseObject({ outcome: z.string() }), z.object({ failed: z.string(), reason: z.string() })]))
      .describe('per event, in the order listed: its ApplyResult, or {failed: CODE, reason} (dead-lettered under <job id>#<index>)'),
  }),
  'BatchJobResult',
  'The return value of a batch job.',
);

/** `x-tally-batch-jobs` in the document: queue name → the component a batch job's data must match. */
export const QUEUE_BATCHES: Record<string, string> = {
  [QUEUE.grants]: '#/components/schemas/GrantsBatchJob',
  [QUEUE.charges]: '#/components/schemas/ChargesBatchJob',
  [QUEUE.affinityEvents]: '#/components/schemas/AffinityEventsBatchJob',
};

/** `x-tally-queues` in the document: queue name → the component its jobs' data must match. */
export const QUEUE_PAYLOADS: Record<string, string> = {
  [QUEUE.grants]: '#/components/schemas/GrantsJob',
  [QUEUE.charges]: '#/components/schemas/ChargesJob',
  [QUEUE.affinityEvents]: '#/components/schemas/AffinityEventsJob',
};
