import type { Job } from 'bullmq';
import type { EventResult as EventResultOf, TallyProducer } from '../../producers/index.ts';

/** A payload that passed its queue's schema, on its way to the queue. */
export interface AcceptedEvent {
  queue: string;
  payload: { type: string; event_id: string } & Record<string, unknown>;
}

/** What an applied event answers: its ApplyResult, or why it failed (`failed` = the reason's stable code). */
export type EventResult = EventResultOf;

export interface Enqueued {
  /** Each accepted event's result, in the order given, once applied (or `failed: 'timeout'` past the deadline). */
  wait(timeoutMs: number): Promise<EventResult[]>;
}

/**
 * The enqueue step of `POST /v1/events` (default, CONTRACT v2 §4): one `addBulk` per queue, every job named by its
 * type with `jobId = event_id` — as a BullMQ producer does, so the queues' exactly-once rules apply unchanged (an
 * event already decided answers noop_duplicate, or idempotency_conflict for another payload, from PostgreSQL). A job
 * of that id that failed, or completed with another payload, is replaced (TallyProducer.addFresh), so the resend
 * is decided again.
 */
export async function enqueueAsJobs(producer: TallyProducer, accepted: AcceptedEvent[]): Promise<Enqueued> {
  return enqueueByQueue(producer, accepted, (queue, payloads) =>
    producer.addFresh(queue, payloads.map((p) => ({ name: p.type, data: p, opts: { jobId: p.event_id } }))),
  );
}

/**
 * `?mode=batch`: per queue, one batch job (`{type:"batch", events}`, CONTRACT v2 §3) holding that queue's accepted
 * events in the order sent (a call carries at most 1,000, a batch's limit). The job id comes from its events
 * (TallyProducer.sendBulk), so the same call sent again is the same job (a failed one is replaced: addFresh).
 * Either way each event is decided once by its event_id.
 */
export async function enqueueAsBatches(producer: TallyProducer, accepted: AcceptedEvent[]): Promise<Enqueued> {
  // Already validated by the route with the workers' own schemas: sendBulk's check passes them as they are.
  return enqueueByQueue(producer, accepted, (queue, payloads) => producer.bulk(queue, payloads, { batch: true }));
}

/** Groups accepted events by queue (keeping their order), enqueues each group, and answers per event in call order. */
async function enqueueByQueue(
  producer: TallyProducer,
  accepted: AcceptedEvent[],
  add: (queue: string, payloads: AcceptedEvent['payload'][]) => Promise<Job[]>,
): Promise<Enqueued> {
  const byQueue = new Map<string, number[]>();
  accepted.forEach((a, i) => {
    const list = byQueue.get(a.queue);
    if (list) list.push(i);
    else byQueue.set(a.queue, [i]);
  });
  const added = await Promise.all([...byQueue].map(async ([queue, indexes]) => ({ queue, indexes, jobs: await add(queue, indexes.map((i) => accepted[i]!.payload)) })));
  return {
    async wait(timeoutMs) {
      const results: EventResult[] = new Array(accepted.length);
      await Promise.all(
        added.map(async ({ queue, indexes, jobs }) => {
          const each = await producer.eventResults(queue, jobs, timeoutMs);
          indexes.forEach((i, k) => (results[i] = each[k]!));
        }),
      );
      return results;
    },
  };
}
