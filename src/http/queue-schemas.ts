import { affinityAdjustSchema, affinityEventSchema, affinityJobSchema } from '../queues/affinity-events/schema.ts';
import { chargeSchema, chargesJobSchema, refundSchema, usageSchema } from '../queues/charges/schema.ts';
import { idSchema, QUEUE } from '../queues/common.ts';
import { grantSchema, grantsJobSchema, rewardEventSchema } from '../queues/grants/schema.ts';
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

/** `x-tally-queues` in the document: queue name → the component its jobs' data must match. */
export const QUEUE_PAYLOADS: Record<string, string> = {
  [QUEUE.grants]: '#/components/schemas/GrantsJob',
  [QUEUE.charges]: '#/components/schemas/ChargesJob',
  [QUEUE.affinityEvents]: '#/components/schemas/AffinityEventsJob',
};
