import { z } from 'zod';

/** Opaque ids: 1–128 chars of [A-Za-z0-9._@-], not all digits (BullMQ refuses such job ids). */
export const idSchema = z
  .string()
  .regex(/^[A-Za-z0-9._@-]{1,128}$/, 'must be 1–128 characters of [A-Za-z0-9._@-]')
  .refine((s) => !/^\d+$/.test(s), 'must not be all digits');

/** A positive amount in the asset's smallest unit. */
export const amountSchema = z.number().int('must be an integer').positive().max(Number.MAX_SAFE_INTEGER);

export const isoTimestamp = z.iso.datetime({ offset: true, message: 'must be an ISO-8601 timestamp with a zone' });

export const FUTURE_TOLERANCE_MS = 5 * 60_000;

/** Bad input when `at` lies more than the tolerance ahead of `now` (the transaction's clock, tally_now()). */
export function futureProblem(at: Date, now: Date): string | null {
  return at.getTime() > now.getTime() + FUTURE_TOLERANCE_MS ? 'occurred_at is more than 5 minutes in the future' : null;
}

export const textSchema = z.string().max(1000);

/** Every queue tally consumes, by name. */
export const QUEUE = {
  affinityEvents: 'affinity-events',
  charges: 'charges',
  grants: 'grants',
  maintenance: 'maintenance',
  pushFanout: 'push-fanout',
} as const;
export type QueueName = (typeof QUEUE)[keyof typeof QUEUE];

/** Default options for jobs tally's own producers add; foreign producers may set their own. */
export const DEFAULT_JOB_OPTIONS = {
  // Transient faults never consume attempts (tally retries those itself); attempts only cover bugs.
  attempts: 5,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 24 * 3600, count: 20_000 },
  removeOnFail: false, // failed jobs are kept, with their reason, for an operator
} as const;

/** Turns a zod error into one line: `field: problem; field: problem`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length ? i.path.join('.') : '(payload)'}: ${i.message}`)
    .join('; ');
}
