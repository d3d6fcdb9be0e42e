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
 * event already decided answers noop_duplicate, or idempotency_conflict for another payload, from PostgreSQL). A
 * finished job of that id is replaced (TallyProducer.addFresh), so the resend is decided again.
 */
export async function enqueueAsJobs(producer: TallyProducer, accepted: AcceptedEvent[]): Promise<Enqueued> {
  return enqueueByQueue(producer, accepted, (queue, payloads) =>
    producer.addFresh(queue, payloads.map((p) => ({ name: p.type, data: p, opts: { jobId: p.event_id } }))),
  );
}

/**
 * `?mode=batch`: per queue, one batch job (`{type:"batch", events}`, CONTRACT v2 §3) holding that queue's accepted
 * events in the order sent (a call carries at most 1,000, a batch's limit). The job id comes from its events
 * (TallyProducer.sendBulk), so the same call sent again is the same job id (a finished one is replaced: addFresh).
 * Either way each event is decided once by its event_id.
 */
export async function enqueueAsBatches(producer: TallyProducer, accepted: AcceptedEvent[]): Promise<Enqueued> {
  // Already validated by the route with the workers' own schemas: sendBulk's check passes them as they are.
  return enqueueByQueue(producer, accepted, (queue, payloads) => producer.bulk(queue, payloads, { batch: true }));
}

/** The users an event names (the reward's receiver for a reward.event; a refund names none, only its charge). */
function usersOf(payload: AcceptedEvent['payload']): string[] {
  const users: string[] = [];
  for (const k of ['user_id', 'receiver_user_id'] as const) if (typeof payload[k] === 'string') users.push(payload[k] as string);
  return users;
}

/**
 * Splits a call's accepted events into waves that keep each user's order: the queues are worked in parallel, and
 * separate jobs on one queue carry no order either (a worker with concurrency > 1 may start a later job first: BullMQ
 * hands a finishing job the next one in its own script while its main loop fetches another). So a user's next event
 * opens the next wave — unless `batched` (?mode=batch) and it goes to the same queue as the user's previous one:
 * a batch job applies its events in order per user. Events of other users share waves freely.
 * `[grant u, charge u, grant v]` → `[[0, 2], [1]]`; `[charge u, charge u]` → `[[0], [1]]`, batched `[[0, 1]]`.
 *
 * A refund waits for its charge (CONTRACT v2 §3), so it must never sit in a wave before its charge's: a refund of a
 * charge earlier in the call counts as that charge's user's event (it lands in the charge's wave or later); a refund
 * of a charge sent later in the same call goes into the last wave; a refund of a charge outside the call is ordered
 * against nothing (its user is not known here).
 */
export function wavesOf(accepted: AcceptedEvent[], batched = false): number[][] {
  const chargeAt = new Map<string, number>();
  accepted.forEach((a, i) => {
    if (a.payload.type === 'charge' && !chargeAt.has(a.payload.event_id)) chargeAt.set(a.payload.event_id, i);
  });
  const last = new Map<string, { queue: string; wave: number }>();
  const waveOf: number[] = [];
  const toLast: number[] = [];
  const waves: number[][] = [];
  accepted.forEach((a, i) => {
    let users = usersOf(a.payload);
    let wave = 0;
    if (a.payload.type === 'refund') {
      const at = chargeAt.get(a.payload.charge_event_id as string);
      if (at !== undefined && at > i) return void toLast.push(i);
      if (at !== undefined) {
        users = usersOf(accepted[at]!.payload);
        wave = waveOf[at]!;
      }
    }
    for (const u of users) {
      const prev = last.get(u);
      if (prev) wave = Math.max(wave, batched && prev.queue === a.queue ? prev.wave : prev.wave + 1);
    }
    for (const u of users) last.set(u, { queue: a.queue, wave });
    waveOf[i] = wave;
    (waves[wave] ??= []).push(i);
  });
  if (toLast.length > 0) {
    if (waves.length === 0) waves.push([]);
    const final = waves.at(-1)!;
    final.push(...toLast);
    final.sort((x, y) => x - y);
  }
  return waves;
}

/**
 * `?wait=true`: enqueues the waves (wavesOf) one after another, each once the one before it is decided, so a call's
 * events are applied in order per user, within and across queues (a grant before the charge it funds). Past the deadline
 * the remaining waves are still enqueued (they were accepted) and answer `failed: "timeout"`: they will be applied.
 */
export async function applyInWaves(
  accepted: AcceptedEvent[],
  enqueue: (events: AcceptedEvent[]) => Promise<Enqueued>,
  timeoutMs: number,
  batched = false,
): Promise<EventResult[]> {
  const deadline = Date.now() + timeoutMs;
  const results: EventResult[] = new Array(accepted.length);
  for (const wave of wavesOf(accepted, batched)) {
    const enqueued = await enqueue(wave.map((i) => accepted[i]!));
    const done = await enqueued.wait(Math.max(0, deadline - Date.now()));
    wave.forEach((i, k) => (results[i] = done[k]!));
  }
  return results;
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
