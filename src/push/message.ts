/** What a WebSocket client receives, CONTRACT §5. `id` is unique per event, so a client dedupes on it. */
export interface PushMessage {
  id: string;
  type: OutboxType;
  ts: string;
  data: Record<string, unknown>;
}

export type OutboxType = 'balance_changed' | 'affinity_update' | 'level_up' | 'level_down' | 'alert';

/** One row of the committed, ordered outbox feed (docs/push.md "The feed"). */
export interface FeedEvent {
  /** Delivery order: final once visible, and every row visible later has a larger one. */
  seq: bigint;
  user_id: string;
  type: OutboxType;
  data: Record<string, unknown>;
  created_at: Date;
}

const ID_PREFIX = 'ob-';
/** seq is a PostgreSQL bigint. */
const MAX_SEQ = 9_223_372_036_854_775_807n;

/** `ob-` keeps the id within the contract's id charset rule (not all digits); the number is the feed seq. */
export function messageId(seq: bigint): string {
  return `${ID_PREFIX}${seq}`;
}

/** The seq of an id this server gave out, or null for anything else (a client's `since` is untrusted input). */
export function parseMessageId(id: string | null | undefined): bigint | null {
  if (typeof id !== 'string' || !/^ob-(0|[1-9]\d{0,18})$/.test(id)) return null;
  const seq = BigInt(id.slice(ID_PREFIX.length));
  return seq <= MAX_SEQ ? seq : null;
}

export function toMessage(row: FeedEvent): PushMessage {
  return { id: messageId(row.seq), type: row.type, ts: row.created_at.toISOString(), data: row.data };
}

/**
 * One pub/sub channel per user under the tally prefix: a gateway subscribes only to the users it has
 * sockets for, so each process receives just its own users' traffic.
 */
export function userChannel(prefix: string, userId: string): string {
  return `${prefix}:push:user:${userId}`;
}

/** Published after each relay run with the feed head: a wake-up hint for feed consumers (never the only trigger). */
export function feedChannel(prefix: string): string {
  return `${prefix}:push:feed`;
}

/**
 * A gateway-to-gateway message on a user's channel: close these sockets (the user is over its socket cap).
 * Told apart from events by having no `id`.
 */
export interface KickMessage {
  kick: string[];
}
