import { WebSocket } from 'ws';
import { pushMetrics } from './metrics.ts';

/** Close codes tally uses on the stream (docs/push.md "Close codes"). */
export const CLOSE = {
  /** The gateway lost its fan-out subscription: reconnect with `since` to get what was missed. */
  subscriptionLost: 4001,
  /** The token's `exp` passed. */
  tokenExpired: 4003,
  /** The user opened more sockets than TALLY_WS_MAX_PER_USER: this, the oldest, was closed. */
  replaced: 4008,
  /** Server shutting down. */
  goingAway: 1001,
} as const;

/** Live messages held per socket while its replay runs; beyond this they are dropped and re-read from the feed. */
const MAX_HELD = 1_000;
/** A socket asked to close that has not finished the closing handshake by then is cut. */
const CLOSE_GRACE_MS = 2_000;

/**
 * One client socket. Every write goes through `write`, which sends only messages with a seq above the last one
 * sent: re-published duplicates and replay/live overlaps never reach the client twice, and what it sees on one
 * socket is in seq order. While a resume replays from the feed, live messages are held (or, past a bound,
 * dropped and re-read from the feed, which has them: a message is published only after its seq committed).
 */
export class PushSession {
  lastSeq = 0n;
  alive = true;
  private replaying: boolean;
  private held: { seq: bigint; raw: string }[] = [];
  /** Live messages were dropped while replaying: the replay must read the feed again before going live. */
  private heldOverflow = false;
  private expiry: NodeJS.Timeout | undefined;

  constructor(
    readonly ws: WebSocket,
    readonly userId: string,
    /** Unique across gateway processes (the per-user cap names sockets by it). */
    readonly socketId: string,
    resuming: boolean,
    private readonly onSlow: (session: PushSession) => void,
    readonly maxBuffered: () => number,
  ) {
    this.replaying = resuming;
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Closes with `code` when the token's `exp` (Unix seconds) passes. */
  expireAt(expSeconds: number): void {
    const ms = Math.max(0, expSeconds * 1000 - Date.now());
    this.expiry = setTimeout(() => {
      pushMetrics.closed.inc({ reason: 'expired' });
      this.close(CLOSE.tokenExpired, 'token expired');
    }, ms);
    this.expiry.unref();
  }

  /** A live message from the fan-out channel. */
  offer(seq: bigint, raw: string): void {
    if (!this.replaying) {
      this.write(seq, raw);
      return;
    }
    if (this.held.length < MAX_HELD) this.held.push({ seq, raw });
    else {
      this.held = [];
      this.heldOverflow = true;
    }
  }

  /** The replay reached the end of the feed: true if it may go live, false if it must read again first. */
  finishReplay(): boolean {
    if (this.heldOverflow) {
      this.heldOverflow = false;
      return false;
    }
    this.replaying = false;
    const held = this.held;
    this.held = [];
    for (const m of held) this.write(m.seq, m.raw);
    return true;
  }

  /** Goes live whatever was held or dropped (after a resync the client re-reads state anyway). */
  goLive(): void {
    this.heldOverflow = false;
    this.finishReplay();
  }

  /** Sends unless already sent (seq not above the last one); false when the socket is gone or was too slow. */
  write(seq: bigint, raw: string): boolean {
    if (!this.open) return false;
    if (seq <= this.lastSeq) return true;
    if (this.ws.bufferedAmount + Buffer.byteLength(raw) > this.maxBuffered()) {
      this.onSlow(this);
      return false;
    }
    this.ws.send(raw);
    this.lastSeq = seq;
    return true;
  }

  /** A message outside the seq order (resync). */
  sendControl(obj: unknown): void {
    if (this.open) this.ws.send(JSON.stringify(obj));
  }

  close(code: number, reason: string): void {
    clearTimeout(this.expiry);
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close(code, reason);
    // A client that ignores the close frame gets nothing more (the socket is CLOSING) and is cut shortly.
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  disposed(): void {
    clearTimeout(this.expiry);
  }
}
