/** What a WebSocket client receives, CONTRACT §5. `id` is unique per outbox row, so a client dedupes on it. */
export interface PushMessage {
  id: string;
  type: 'balance_changed' | 'affinity_update' | 'level_up' | 'level_down';
  ts: string;
  data: Record<string, unknown>;
}

export interface OutboxEvent {
  outbox_id: bigint;
  user_id: string;
  type: PushMessage['type'];
  data: Record<string, unknown>;
  created_at: Date;
}

/** `ob-` keeps the id within the contract's id charset rule (not all digits). */
export function toMessage(row: OutboxEvent): PushMessage {
  return { id: `ob-${row.outbox_id}`, type: row.type, ts: row.created_at.toISOString(), data: row.data };
}

/**
 * One pub/sub channel per user under the tally prefix: a gateway subscribes only to the users it has
 * sockets for, so each process receives just its own users' traffic.
 */
export function userChannel(prefix: string, userId: string): string {
  return `${prefix}:push:user:${userId}`;
}
