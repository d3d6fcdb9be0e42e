import { Queue, Worker } from 'bullmq';
import type { RedisClient as Redis } from '../redis.ts';
import type { AppContext } from '../context.ts';
import type { Sql } from '../db/client.ts';
import type { Logger } from '../log.ts';
import { onOutboxCommitted } from '../outbox/after-commit.ts';
import { QUEUE } from '../queues/common.ts';
import { createRedis } from '../redis.ts';
import { WORKER_DEFAULTS } from '../workers/worker-deps.ts';
import { workerCreated } from '../workers/worker-registry.ts';
import { feedSequenced } from './feed.ts';
import { feedChannel, toMessage, userChannel } from './message.ts';
import { pushMetrics } from './metrics.ts';
import { pushSettings } from './settings.ts';
import { markPublished, nextToPublish } from './sql/publish-batch.ts';
import { sequenceOutbox } from './sql/sequence-outbox.ts';

export interface RelayDeps {
  sql: Sql;
  /** A connection that fails fast (see `createPublisher`): a relay transaction must not wait out an outage. */
  publisher: Redis;
  prefix: string;
}

export interface RelaySummary {
  /** Rows published to the fan-out channels by this run. */
  relayed: number;
  /** Rows given their feed seq by this run. */
  sequenced: number;
  batches: number;
  /** Rows were left for the next job (the batch budget ran out while rows kept coming). */
  more: boolean;
}

/**
 * Relays the outbox in two steps per batch (docs/push.md):
 *  1. sequence — committed rows get their feed seq, in a transaction of its own, so the id a client sees is
 *     final before it is ever published (a failed publish re-sends the same id, never a new one);
 *  2. publish — the next sequenced rows go out on their users' channels in seq order, and the `published` mark
 *     moves in the transaction that published them: a crash anywhere re-publishes rather than loses.
 */
export async function relayOutbox(deps: RelayDeps, batch = pushSettings.relayBatch, maxBatches = pushSettings.relayBatchesPerJob): Promise<RelaySummary> {
  let relayed = 0;
  let sequenced = 0;
  for (let batches = 0; batches < maxBatches; batches++) {
    const s = await sequenceOutbox(deps.sql, batch);
    sequenced += s.sequenced;
    if (s.sequenced > 0) feedSequenced(s.head);
    const n = await publishBatch(deps, batch);
    relayed += n;
    pushMetrics.relayed.inc(n);
    if (s.sequenced < batch && n < batch) return { relayed, sequenced, batches: batches + 1, more: false };
  }
  return { relayed, sequenced, batches: maxBatches, more: true };
}

async function publishBatch(deps: RelayDeps, batch: number): Promise<number> {
  return deps.sql.begin(async (tx) => {
    const { from, rows } = await nextToPublish(tx, batch);
    if (rows.length === 0) return 0;
    const pipeline = deps.publisher.pipeline();
    for (const row of rows) pipeline.publish(userChannel(deps.prefix, row.user_id), JSON.stringify(toMessage(row)));
    const to = rows.at(-1)!.seq;
    pipeline.publish(feedChannel(deps.prefix), String(to));
    const replies = (await pipeline.exec()) ?? [];
    const failed = replies.find(([err]) => err);
    if (failed || replies.length !== rows.length + 1) throw failed?.[0] ?? new Error('publish pipeline incomplete');
    await markPublished(tx, from, to);
    return rows.length;
  });
}

/** Commands fail within seconds instead of queueing through an outage, so no relay transaction hangs. */
export function createPublisher(url: string): Redis {
  return createRedis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 5_000 });
}

const FAST_PATH_JOB = {
  // At most one fast-path job waits while one runs: every commit is covered by a job that starts after it,
  // and a burst of commits costs two jobs, not one per commit.
  deduplication: { id: 'relay', keepLastIfActive: true },
  removeOnComplete: true,
  removeOnFail: { count: 100 },
} as const;

/**
 * The fast path: after a commit that wrote outbox rows, enqueue a fanout job. Fire-and-forget: it never
 * awaits in the committing code, at most one enqueue is in flight per process (a Redis outage cannot pile
 * up promises), and a failure is counted and left to the sweep.
 */
export function startFastPath(queue: Queue, log: Logger): () => void {
  let inFlight = false;
  let again = false;
  const kick = (): void => {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    queue
      .add('relay', {}, FAST_PATH_JOB)
      .catch((err: Error) => {
        pushMetrics.enqueueFailures.inc();
        log.warn({ err: { message: err.message } }, 'push fast path: enqueue failed (the sweep will relay)');
      })
      .finally(() => {
        inFlight = false;
        if (again) {
          again = false;
          kick();
        }
      });
  };
  return onOutboxCommitted(() => {
    if (pushSettings.fastPath) kick();
  });
}

/** Worker role: the fanout worker (fast-path and sweep jobs alike relay the outbox) and the fast path. */
export async function startRelay(ctx: AppContext): Promise<{ close(): Promise<void> }> {
  const log = ctx.log.child({ role: 'worker', queue: QUEUE.pushFanout });
  const publisher = createPublisher(ctx.env.REDIS_URL);
  publisher.on('error', (err) => log.warn({ err: { message: err.message } }, 'push publisher connection error'));
  const deps: RelayDeps = { sql: ctx.sql, publisher, prefix: ctx.env.TALLY_PREFIX };
  const queue = new Queue(QUEUE.pushFanout, { connection: ctx.redis, prefix: ctx.env.TALLY_PREFIX });
  queue.on('error', (err) => log.warn({ err: { message: err.message } }, 'push fanout queue error'));
  const stopFastPath = startFastPath(queue, log);

  const worker = new Worker(
    QUEUE.pushFanout,
    async (job) => {
      try {
        const summary = await relayOutbox(deps);
        if (summary.more) await queue.add('relay', {}, FAST_PATH_JOB);
        if (summary.relayed > 0) log.debug({ job: job.name, ...summary }, 'outbox relayed');
        return summary;
      } catch (err) {
        // Nothing is lost: unpublished rows stay unrelayed for the next job or sweep.
        pushMetrics.relayFailures.inc();
        // A publisher connection that stopped answering (half-open) would time out every run: start it over.
        if (/timed out/i.test((err as Error).message) && publisher.status === 'ready') publisher.disconnect(true);
        log.warn({ err: { message: (err as Error).message }, job: job.name }, 'outbox relay failed');
        throw err;
      }
    },
    { connection: ctx.redis, prefix: ctx.env.TALLY_PREFIX, concurrency: 2, ...WORKER_DEFAULTS, removeOnComplete: { count: 100 } },
  );
  worker.on('error', (err) => log.error({ err }, 'push fanout worker error'));
  workerCreated(worker); // job metrics attach here

  return {
    async close() {
      stopFastPath();
      await worker.close();
      await queue.close();
      await publisher.quit().catch(() => publisher.disconnect());
    },
  };
}

/** Scheduler role: the safety-net sweep, a BullMQ job scheduler (fires once per interval however many schedulers run). */
export async function startSweepSchedule(ctx: AppContext): Promise<{ close(): Promise<void> }> {
  const queue = new Queue(QUEUE.pushFanout, { connection: ctx.redis, prefix: ctx.env.TALLY_PREFIX });
  queue.on('error', (err) => ctx.log.warn({ err: { message: err.message } }, 'push sweep queue error'));
  await queue.upsertJobScheduler('push-sweep', { every: pushSettings.sweepEveryMs }, { name: 'sweep', opts: { removeOnComplete: true, removeOnFail: { count: 100 } } });
  return { close: () => queue.close() };
}
