import { Counter, Gauge } from 'prom-client';

/**
 * Push is fire-and-forget for the business path: its failures show up here (and in warn logs), never as a
 * failed ledger job. Registered on prom-client's default registry, which `GET /metrics` exposes.
 */
export const pushMetrics = {
  relayed: new Counter({ name: 'tally_push_relayed_total', help: 'Outbox rows published to the fan-out channels' }),
  relayFailures: new Counter({ name: 'tally_push_relay_failures_total', help: 'Relay runs that failed (rows stay unrelayed for the next run)' }),
  enqueueFailures: new Counter({ name: 'tally_push_enqueue_failures_total', help: 'Fast-path fanout jobs that could not be enqueued (the sweep delivers)' }),
  delivered: new Counter({ name: 'tally_push_delivered_total', help: 'Messages written to WebSocket clients' }),
  refused: new Counter({ name: 'tally_push_refused_total', help: 'WebSocket upgrades refused', labelNames: ['reason'] as const }),
  slowDisconnects: new Counter({ name: 'tally_push_slow_disconnects_total', help: 'Sockets dropped because their send buffer was full' }),
  deadDisconnects: new Counter({ name: 'tally_push_dead_disconnects_total', help: 'Sockets dropped for missing a heartbeat pong' }),
  connections: new Gauge({ name: 'tally_push_connections', help: 'Open WebSocket connections on this process' }),
  resumes: new Counter({ name: 'tally_push_resumes_total', help: 'Connects with ?since, by result (replayed, resync, gone, failed)', labelNames: ['result'] as const }),
  closed: new Counter({ name: 'tally_push_closed_total', help: 'Sockets tally closed, by reason (replaced, expired)', labelNames: ['reason'] as const }),
  subscriptionLosses: new Counter({ name: 'tally_push_subscription_losses_total', help: 'Times a gateway lost its fan-out subscription and closed its sockets (4001)' }),
  pruned: new Counter({ name: 'tally_push_outbox_pruned_total', help: 'Relayed outbox rows deleted after the retention period' }),
};
