import { z } from 'zod';

/** Opaque ids: 1–128 chars of [A-Za-z0-9._@-], not all digits (BullMQ refuses such job ids). */
export const idSchema = z
  .string()
  .regex(/^[A-Za-z0-9._@-]{1,128}$/, 'must be 1–128 characters of [A-Za-z0-9._@-]')
  .refine((s) => !/^\d+$/.test(s), 'must not be all digits');

/** A positive amount in the asset's smallest unit. */
export const amountSchema = z.number().int('must be an integer').positive().max(Number.MAX_SAFE_INTEGER);

/**
 * Instants tally accepts: from the Unix epoch to the start of year 9999 (decided for issue 10). PostgreSQL refuses
 * year 0 (an offset can push `0001-01-01T00:00+14:00` there) and natural days near year 10000 would need five
 * digits; nothing tally books happened before 1970 or will expire after 9998.
 */
export const EARLIEST_INSTANT = Date.UTC(1970, 0, 1);
export const LATEST_INSTANT = Date.UTC(9999, 0, 1);

export const isoTimestamp = z.iso
  .datetime({ offset: true, message: 'must be an ISO-8601 timestamp with a zone' })
  .refine((s) => {
    const at = Date.parse(s);
    return at >= EARLIEST_INSTANT && at < LATEST_INSTANT;
  }, 'must lie between 1970-01-01 and 9999-01-01');

export const FUTURE_TOLERANCE_MS = 5 * 60_000;

/** Bad input when `at` lies more than the tolerance ahead of `now` (the transaction's clock, tally_now()). */
export function futureProblem(at: Date, now: Date): string | null {
  return at.getTime() > now.getTime() + FUTURE_TOLERANCE_MS ? 'occurred_at is more than 5 minutes in the future' : null;
}

const CONTROL_CHARS = /[\u0000-\u001f]/;
const NUL = /\u0000/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Well-formed Unicode: PostgreSQL refuses a lone surrogate in jsonb, and text would store it as U+FFFD. */
export function wellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

/** Whether a string may appear in a payload: contract v2 §3 (`description` allows every control character but NUL). */
export function stringProblem(s: string, allowControl = false): string | null {
  if (allowControl ? NUL.test(s) : CONTROL_CHARS.test(s)) {
    return allowControl ? 'must not contain U+0000' : 'must not contain control characters (U+0000–U+001F)';
  }
  return wellFormed(s) ? null : 'must be well-formed Unicode (no lone surrogates)';
}

/** A free-form string of at most `max` characters: no control characters, well-formed (contract v2 §3). */
export function plainString(max: number) {
  return z
    .string()
    .max(max)
    .superRefine((s, ctx) => {
      const problem = stringProblem(s);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });
}

/** `description`: free text where line breaks and tabs are fine, only NUL is refused (contract v2 §3). */
export const descriptionSchema = z
  .string()
  .max(1000)
  .superRefine((s, ctx) => {
    const problem = stringProblem(s, true);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** Other free text (a refund's or an adjustment's `reason`). */
export const textSchema = plainString(1000);

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

/** Issues named in one line; a payload with more says how many more (a reason stays short). */
const MAX_ISSUES = 10;

/** Turns a zod error into one line: `field: problem; field: problem`. */
export function describeIssues(error: z.ZodError): string {
  const named = error.issues
    .slice(0, MAX_ISSUES)
    .map((i) => `${i.path.length ? i.path.map(String).join('.') : '(payload)'}: ${i.message}`)
    .join('; ');
  const more = error.issues.length - MAX_ISSUES;
  return more > 0 ? `${named}; and ${more} more` : named;
}
