import { z } from 'zod';
import { affinityJobSchema } from './affinity-events/schema.ts';
import { chargesJobSchema } from './charges/schema.ts';
import { QUEUE } from './common.ts';
import { grantsJobSchema } from './grants/schema.ts';

/**
 * Batch jobs (CONTRACT v2 §3): `{"type":"batch","events":[…]}` on any of the three event queues, 1–1000 payloads of
 * that queue's types, any unique jobId. Each event is applied as if it were its own job; this module only says what
 * a well-formed envelope is.
 */
export const BATCH_TYPE = 'batch';
export const MAX_BATCH_EVENTS = 1000;

/** The payload types each event queue takes (what a batch on it may carry). */
export const QUEUE_TYPES: Readonly<Record<string, readonly string[]>> = {
  [QUEUE.grants]: ['grant', 'reward.event'],
  [QUEUE.charges]: ['charge', 'refund'],
  [QUEUE.affinityEvents]: ['affinity.event', 'affinity.adjust'],
};

/** A batch job's data as the worker reads it: the members are checked one by one, each failing alone. */
export interface BatchJobData {
  type: typeof BATCH_TYPE;
  events: ({ type: string } & Record<string, unknown>)[];
}

/** One member's answer in a batch's result: its ApplyResult, or why it failed (`failed` = the stable code). */
export type BatchMemberResult = ({ outcome: string } & Record<string, unknown>) | { failed: string; reason: string };

/** A batch job's return value. */
export type BatchJobResult = {
  outcome: 'batch';
  results: BatchMemberResult[];
};

export function isBatchJob(data: unknown): boolean {
  return typeof data === 'object' && data !== null && (data as { type?: unknown }).type === BATCH_TYPE;
}

/**
 * Why a batch job's envelope is malformed (the whole job fails at once, invalid_payload), or null. Malformed: extra
 * keys, `events` not an array of 1–1000, or a member that is not an object naming one of this queue's types — a
 * batch sent to the wrong queue, or nested batches. A member of the right type with bad fields is not the
 * envelope's problem: it fails alone.
 */
export function batchEnvelopeProblem(queue: string, data: unknown): string | null {
  const types = QUEUE_TYPES[queue];
  if (!types) return `queue ${queue} takes no batch jobs`;
  const d = data as Record<string, unknown>;
  const extra = Object.keys(d).filter((k) => k !== 'type' && k !== 'events');
  if (extra.length > 0) return `batch: unknown key(s) ${extra.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 64))).join(', ')}`;
  if (!Array.isArray(d.events)) return 'events: must be an array of payloads';
  const n = d.events.length;
  if (n < 1 || n > MAX_BATCH_EVENTS) return `events: must hold 1–${MAX_BATCH_EVENTS} payloads (got ${n})`;
  for (let i = 0; i < n; i++) {
    const e = d.events[i] as { type?: unknown } | null;
    const type = e !== null && typeof e === 'object' && !Array.isArray(e) ? e.type : undefined;
    if (typeof type !== 'string' || !types.includes(type)) {
      return `events.${i}.type: must be one of ${types.join(', ')} on the ${queue} queue`;
    }
  }
  return null;
}

/** The dead letter's `job_id` for member `index` of batch job `jobId` (dead_letters is unique by queue and job_id). */
export function memberJobId(jobId: string, index: number): string {
  return `${jobId}#${index}`;
}

/** The documented shape of a batch on a queue: what a producer should send (every member a valid payload). */
function batchOf(members: z.ZodType) {
  return z.object({ type: z.literal(BATCH_TYPE), events: z.array(members).min(1).max(MAX_BATCH_EVENTS) }).strict();
}

export const grantsBatchJobSchema = batchOf(grantsJobSchema);
export const chargesBatchJobSchema = batchOf(chargesJobSchema);
export const affinityBatchJobSchema = batchOf(affinityJobSchema);
