import type { Job } from 'bullmq';
import { invalidPayload } from '../errors.ts';
import { QUEUE, describeIssues } from '../queues/common.ts';
import { affinityJobSchema } from '../queues/affinity-events/schema.ts';
import { occurredAt, payloadHash, type CarriedBy } from '../workers/ledger-commands.ts';
import type { AffinityCommand } from './commands.ts';

/** Validates an `affinity-events` job (other languages enqueue raw JSON) into an affinity command. */
export function toAffinityCommand(job: Job): AffinityCommand {
  return affinityCommandOf(job.data, { id: job.id ?? '', timestamp: job.timestamp, progress: job.progress });
}

/** Validates one `affinity-events` payload (a job's data, or a member of a batch job) into an affinity command. */
export function affinityCommandOf(data: unknown, job: CarriedBy): AffinityCommand {
  const parsed = affinityJobSchema.safeParse(data);
  if (!parsed.success) throw invalidPayload(describeIssues(parsed.error));
  const d = parsed.data;
  // Written out, not spread from a base object: adding properties after a spread is slow in V8 (see toLedgerCommand).
  const queue = QUEUE.affinityEvents;
  const jobId = job.id;
  const hash = payloadHash(data);
  if (d.type === 'affinity.event') {
    return {
      queue,
      eventId: d.event_id,
      jobId,
      payloadHash: hash,
      payload: data,
      op: 'event',
      userId: d.user_id,
      deviceId: d.device_id,
      ruleKey: d.rule_key,
      source: d.source,
      occurredAt: occurredAt(d.occurred_at, job),
      units: d.metadata?.units ?? 1,
    };
  }
  return {
    queue,
    eventId: d.event_id,
    jobId,
    payloadHash: hash,
    payload: data,
    op: 'adjust',
    userId: d.user_id,
    deviceId: d.device_id,
    delta: d.delta,
    operatorId: d.operator_id,
    reason: d.reason,
    occurredAt: new Date(job.timestamp),
  };
}
