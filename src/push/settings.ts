/**
 * Live-push tuning. Defaults suit production; tests and the benchmark lower the intervals before they
 * start tally in-process (these are read when a role starts, not per event).
 */
export const pushSettings = {
  /** Enqueue a fanout job right after every commit that wrote outbox rows. Off = the sweep alone delivers. */
  fastPath: true,
  /** How often the safety-net sweep relays rows a lost fast-path notification left behind. */
  sweepEveryMs: 3_000,
  /** Outbox rows one relay transaction claims and publishes. */
  relayBatch: 500,
  /** Batches one fanout job relays before it yields to the next job (a steady stream never starves others). */
  relayBatchesPerJob: 20,
  /**
   * Relayed rows are kept this long (the resume window), then pruned by `outbox-prune`. A process takes it from
   * TALLY_OUTBOX_RETENTION_HOURS (src/maintenance/retention.ts); this is the value when a task runs without one.
   */
  retentionHours: 24,
  /** How often the prune maintenance task runs. */
  pruneEveryMs: 10 * 60_000,
  /** A socket that has not answered the previous ping when the next one is due is dropped. */
  heartbeatMs: 30_000,
  /** A fan-out subscription that has not answered a PING for this long (and two heartbeats) is cut: its sockets get 4001. */
  subscriberTimeoutMs: 10_000,
  /** Bytes a socket may have queued unsent; a consumer that falls further behind is disconnected. */
  maxBufferedBytes: 1024 * 1024,
  /** Feed rows one resume query reads (a resume pages through the feed, pausing while the socket's buffer is full). */
  replayPage: 500,
  /** Resume queries one API process runs at once: a reconnect storm queues instead of draining the DB pool. */
  replayReaders: 4,
};

export type PushSettings = typeof pushSettings;
