import type { Job } from 'bullmq';
import type { Sql } from '../db/client.ts';
import { printable, type PermanentJobError } from '../errors.ts';
import type { CommandKey, CommandOutcome } from '../ledger/commands.ts';
import { recordDeadLetters, type DeadLetter } from '../ledger/sql/dead-letters.ts';
import { storablePayload } from '../queues/free-form.ts';

/**
 * The dead letter of a job refused before it reached a batch (bad input). Everything in it comes from the job as
 * sent, so it is made storable first: ids and reason printable and bounded, the payload as sent or its summary —
 * a dead letter must never fail to be written because of what it records.
 */
export function refusedJobLetter(queue: string, job: Job, error: PermanentJobError): DeadLetter {
  const eventId = (job.data as { event_id?: unknown } | null)?.event_id;
  return {
    queue,
    job_id: printable(job.id ?? '', 200),
    event_id: typeof eventId === 'string' ? printable(eventId, 200) : null,
    reason_code: error.code,
    reason: error.message,
    payload: storablePayload(job.data),
  };
}

/**
 * The Batcher's `failAlone` for a queue worker: an event its batch had to leave behind (a value the database
 * cannot store; a unique violation that persisted) is dead-lettered with its reason, and fails like bad input.
 * Its transaction rolled back, so nothing else records it.
 */
export function deadLetterAlone(sql: Sql) {
  return async (cmd: CommandKey, error: PermanentJobError): Promise<CommandOutcome> => {
    await recordDeadLetters(sql, [
      { queue: cmd.queue, job_id: cmd.jobId, event_id: cmd.eventId, reason_code: error.code, reason: error.message, payload: storablePayload(cmd.payload) },
    ]);
    return { ok: false, error };
  };
}
