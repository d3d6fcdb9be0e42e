import type { Job } from 'bullmq';
import type { TallyProducer } from '../../producers/index.ts';

/** A payload that passed its queue's schema, on its way to the queue. */
export interface AcceptedEvent {
  queue: string;
  payload: { type: string; event_id: string } & Record<string, unknown>;
}

/** What an applied event answers: its ApplyResult, or why it failed (`failed` = the reason's stable code). */
export type EventResult = ({ outcome: string } & Record<string, unknown>) | { failed: string; reason: string };

export interface Enqueued {
  /** Each accepted event's result, in the order given, once applied (or `failed: 'timeout'` past the deadline). */
  wait(timeoutMs: number): Promise<EventResult[]>;
}

/**
 * The enqueue step of `POST /v1/events`, kept in one place so another way of enqueueing (e.g. batch jobs) can be
 * swapped in: one `addBulk` per queue, every job named by its type with `jobId = event_id` — exactly what a
 * BullMQ producer does, so the queues' exactly-once rules apply unchanged (a jobId already in the queue is not
 * added again; an event already decided answers noop_duplicate from PostgreSQL).
 */
export async function enqueueAsJobs(producer: TallyProducer, accepted: AcceptedEvent[]): Promise<Enqueued> {
  const byQueue = new Map<string, number[]>();
  accepted.forEach((a, i) => byQueue.set(a.queue, [...(byQueue.get(a.queue) ?? []), i]));
  const jobs: Job[] = new Array(accepted.length);
  await Promise.all(
    [...byQueue].map(async ([queue, indexes]) => {
      const added = await producer
        .queue(queue)
        .addBulk(indexes.map((i) => ({ name: accepted[i]!.payload.type, data: accepted[i]!.payload, opts: { jobId: accepted[i]!.payload.event_id } })));
      indexes.forEach((i, k) => (jobs[i] = added[k]!));
    }),
  );
  return {
    wait: (timeoutMs) => Promise.all(jobs.map((job, i) => resultOf(producer, accepted[i]!.queue, job, timeoutMs))),
  };
}

async function resultOf(producer: TallyProducer, queue: string, job: Job, timeoutMs: number): Promise<EventResult> {
  try {
    return (await producer.result(queue, job, timeoutMs)) as EventResult;
  } catch (err) {
    const reason = (err as Error).message ?? String(err);
    if (/^timed out after/.test(reason)) return { failed: 'timeout', reason: 'not applied in time; it stays queued and will be applied' };
    return { failed: /^([a-z_]+):/.exec(reason)?.[1] ?? 'failed', reason };
  }
}
