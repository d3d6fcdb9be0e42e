import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { Redis as StandaloneRedis } from 'ioredis';
import { WebSocket, WebSocketServer } from 'ws';
import type { Db } from '../db/client.ts';
import type { Logger } from '../log.ts';
import { createRedis, type RedisClient as Redis } from '../redis.ts';
import { parseMessageId, userChannel, type KickMessage } from './message.ts';
import { pushMetrics } from './metrics.ts';
import { Limiter, resume } from './replay.ts';
import { CLOSE, PushSession } from './session.ts';
import type { PushSettings } from './settings.ts';
import { readUserFeed } from './sql/read-user-feed.ts';
import { refuse, tokenMessage, withTimeout } from './refuse.ts';
import { verifyToken } from './token.ts';
import { UserSlots } from './user-slots.ts';

export const STREAM_PATH = '/v1/stream';
/** Longest a connect waits for its user's channel subscription (and socket slot) before it is refused (503). */
const SUBSCRIBE_TIMEOUT_MS = 5_000;

export interface GatewayLimits {
  /** TALLY_WS_MAX_TTL_SECONDS */
  maxTtlSeconds: number;
  /** TALLY_WS_MAX_PER_USER, across gateway processes */
  maxPerUser: number;
  /** TALLY_WS_MAX_CONNECTIONS, this process */
  maxConnections: number;
}

export interface GatewayDeps {
  redisUrl: string;
  prefix: string;
  secret: string | undefined;
  /** Where resumes read the feed from. */
  sql: Db;
  log: Logger;
  settings: Pick<PushSettings, 'heartbeatMs' | 'maxBufferedBytes' | 'replayPage' | 'replayReaders' | 'subscriberTimeoutMs'>;
  limits: GatewayLimits;
}

/** A user's sockets on this process, and its channel subscription (held while any socket or connect is pending). */
interface UserEntry {
  sessions: Set<PushSession>;
  pending: number;
  subscribed: Promise<unknown>;
}

interface Connect {
  userId: string;
  exp: number;
  /** `?since` was given (even if unparseable: that is answered with resync). */
  resuming: boolean;
  since: bigint | null;
}

/**
 * The WebSocket gateway of one API process. Each process subscribes to the pub/sub channels of the users it
 * has sockets for and writes each message to those sockets. A write never waits: a socket whose unsent
 * buffer exceeds the bound is dropped, so one slow or dead client cannot hold up the others or grow memory.
 *
 * If the subscription connection drops, whatever was published meanwhile is gone from pub/sub: every socket
 * is closed with 4001 at once, and clients resume with `since` from the feed (docs/push.md "Resume").
 */
export class PushGateway {
  private readonly users = new Map<string, UserEntry>();
  private readonly sockets = new Map<string, PushSession>();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false, clientTracking: true });
  private readonly subscriber: Redis;
  /** Slots and kicks (a subscribed connection cannot run other commands). */
  private readonly commands: Redis;
  private readonly slots: UserSlots;
  private readonly readers: Limiter;
  private readonly gatewayId = randomBytes(6).toString('hex');
  private heartbeat: NodeJS.Timeout;
  private readonly channelPrefix: string;
  private socketCounter = 0;
  private connecting = 0;
  private closing = false;
  private ready: Promise<void> | undefined;
  private pingSentAt: number | undefined;

  constructor(private readonly deps: GatewayDeps) {
    this.channelPrefix = userChannel(deps.prefix, '');
    // No automatic resubscription: a dropped subscription closes every socket (4001) and starts over clean.
    // Named, so an operator (or a fault test) can find it in CLIENT LIST.
    this.subscriber = createRedis(deps.redisUrl, { autoResubscribe: false, connectionName: `${deps.prefix}:push-subscriber` });
    this.subscriber.on('error', (err) => deps.log.warn({ err: { message: err.message } }, 'push subscriber connection error'));
    this.subscriber.on('message', (channel: string, message: string) => this.deliver(channel, message));
    this.subscriber.on('close', () => this.subscriptionLost());
    this.subscriber.on('-node', () => this.subscriptionLost()); // Redis Cluster: the subscriber may have been on it
    this.commands = createRedis(deps.redisUrl, { maxRetriesPerRequest: 1 });
    this.commands.on('error', (err) => deps.log.warn({ err: { message: err.message } }, 'push gateway redis error'));
    this.slots = new UserSlots(this.commands, deps.prefix, {
      maxPerUser: deps.limits.maxPerUser,
      // A gateway refreshes its sockets every heartbeat; one silent for several is gone (crashed).
      staleMs: () => Math.max(3 * deps.settings.heartbeatMs, 30_000),
    });
    this.readers = new Limiter(deps.settings.replayReaders);
    this.heartbeat = this.scheduleBeat();
  }

  /** Takes `upgrade` requests for the stream path on the API's HTTP server. */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== STREAM_PATH) {
        // Nobody else takes upgrades on this server: answer instead of leaving the socket hanging.
        if (server.listenerCount('upgrade') === 1) refuse(socket, 404, 'not_found', `no WebSocket endpoint at ${url.pathname}`);
        return;
      }
      socket.on('error', () => {}); // a client that vanishes mid-handshake is not our error
      void this.upgrade(req, socket, head, url.searchParams).catch((err: Error) => {
        this.deps.log.error({ err: { message: err.message } }, 'push: upgrade failed');
        refuse(socket, 503, 'unavailable', 'push unavailable, retry later');
      });
    });
  }

  /** Token, then capacity, then subscription and slot — all before the handshake. */
  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, params: URLSearchParams): Promise<void> {
    if (this.closing) return refuse(socket, 503, 'unavailable', 'server shutting down');
    const check = verifyToken(this.deps.secret, params.get('token'), { maxTtlSeconds: this.deps.limits.maxTtlSeconds });
    if (!check.ok) {
      pushMetrics.refused.inc({ reason: check.reason });
      return refuse(socket, 401, 'unauthorized', tokenMessage(check.reason, this.deps.limits.maxTtlSeconds));
    }
    if (this.sockets.size + this.connecting >= this.deps.limits.maxConnections) {
      pushMetrics.refused.inc({ reason: 'capacity' });
      return refuse(socket, 503, 'over_capacity', 'this server has as many WebSocket connections as it takes; retry later', 5);
    }
    const sinceText = params.get('since');
    const conn: Connect = { userId: check.claims.userId, exp: check.claims.exp, resuming: sinceText !== null, since: parseMessageId(sinceText) };
    this.connecting++;
    try {
      await this.open(req, socket, head, conn);
    } finally {
      this.connecting--;
    }
  }

  private async open(req: IncomingMessage, socket: Duplex, head: Buffer, conn: Connect): Promise<void> {
    const entry = this.retain(conn.userId);
    // Sortable: the slot set orders equal connect times by id, and a later socket of this process must sort later.
    const socketId = `${this.gatewayId}.${String(++this.socketCounter).padStart(12, '0')}`;
    entry.pending++;
    let victims: string[];
    try {
      // Subscribed before the handshake completes: a client that sees `open` receives every later event.
      await withTimeout(entry.subscribed, SUBSCRIBE_TIMEOUT_MS);
      victims = await withTimeout(this.slots.claim(conn.userId, socketId), SUBSCRIBE_TIMEOUT_MS);
    } catch (err) {
      entry.pending--;
      this.release(conn.userId, entry, true);
      // A command connection that stopped answering (half-open) would fail every connect: start it over.
      if (this.commands.status === 'ready' && (err as Error).message.startsWith('timed out')) this.commands.disconnect(true);
      this.deps.log.warn({ err: { message: (err as Error).message } }, 'push: subscribe failed, connection refused');
      pushMetrics.refused.inc({ reason: 'unavailable' });
      return refuse(socket, 503, 'unavailable', 'push fanout unavailable, retry later', 1);
    }
    entry.pending--;
    // The subscription may have been lost while we waited (the entry is then no longer the user's).
    if (socket.destroyed || this.closing || this.users.get(conn.userId) !== entry) {
      this.slots.release(conn.userId, socketId).catch(() => {});
      this.release(conn.userId, entry);
      if (!socket.destroyed) refuse(socket, 503, 'unavailable', this.closing ? 'server shutting down' : 'push fanout reconnecting, retry', 1);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.connected(ws, entry, conn, socketId, victims));
  }

  private connected(ws: WebSocket, entry: UserEntry, conn: Connect, socketId: string, victims: string[]): void {
    const session = new PushSession(ws, conn.userId, socketId, conn.resuming, (s) => this.slow(s), () => this.deps.settings.maxBufferedBytes);
    if (this.users.get(conn.userId) !== entry) {
      // The subscription was lost during the handshake: this socket would miss what was published meanwhile.
      this.slots.release(conn.userId, socketId).catch(() => {});
      session.close(CLOSE.subscriptionLost, 'push subscription lost; reconnect with since');
      return;
    }
    entry.sessions.add(session);
    this.sockets.set(socketId, session);
    pushMetrics.connections.inc();
    ws.on('pong', () => {
      session.alive = true;
    });
    ws.on('error', () => {}); // the close that follows does the cleanup
    ws.on('close', () => {
      pushMetrics.connections.dec();
      session.disposed();
      entry.sessions.delete(session);
      this.sockets.delete(socketId);
      this.slots.release(conn.userId, socketId).catch(() => {}); // if Redis is away, the entry goes stale and is dropped
      this.release(conn.userId, entry);
    });
    session.expireAt(conn.exp);
    this.kick(conn.userId, victims);
    if (!conn.resuming) return;
    const read = (userId: string, after: bigint, limit: number) => readUserFeed(this.deps.sql, userId, after, limit);
    resume(session, conn.since, read, this.readers, this.deps.settings.replayPage).then(
      (result) => pushMetrics.resumes.inc({ result }),
      (err: Error) => {
        // The client resumes again; nothing was skipped (the session never went live past what it sent).
        this.deps.log.warn({ err: { message: err.message } }, 'push: resume failed');
        pushMetrics.resumes.inc({ result: 'failed' });
        session.close(CLOSE.subscriptionLost, 'resume failed; reconnect with since');
      },
    );
  }

  /** Closes the user's oldest sockets beyond the cap: here directly, on other gateways through the user's channel. */
  private kick(userId: string, victims: string[]): void {
    const remote: string[] = [];
    for (const id of victims) {
      const local = this.sockets.get(id);
      if (local) this.closeReplaced(local);
      else remote.push(id);
    }
    if (remote.length === 0) return;
    const msg: KickMessage = { kick: remote };
    this.commands.publish(userChannel(this.deps.prefix, userId), JSON.stringify(msg)).catch((err: Error) => {
      this.deps.log.warn({ err: { message: err.message } }, 'push: could not ask another gateway to close a socket');
    });
  }

  private closeReplaced(session: PushSession): void {
    pushMetrics.closed.inc({ reason: 'replaced' });
    session.close(CLOSE.replaced, 'too many connections for this user; this, the oldest, was closed');
  }

  private slow(session: PushSession): void {
    // Too far behind: drop it (the client resumes with since) rather than buffer without bound.
    pushMetrics.slowDisconnects.inc();
    this.deps.log.warn({ buffered: session.ws.bufferedAmount }, 'push: slow consumer disconnected');
    session.ws.terminate();
  }

  private retain(userId: string): UserEntry {
    let entry = this.users.get(userId);
    if (!entry) {
      const channel = userChannel(this.deps.prefix, userId);
      entry = { sessions: new Set(), pending: 0, subscribed: this.whenReady().then(() => this.subscriber.subscribe(channel)) };
      entry.subscribed.catch(() => {}); // observed by the connect that awaits it
      this.users.set(userId, entry);
    }
    return entry;
  }

  /**
   * ioredis lets SUBSCRIBE through while its handshake (ready check) is still running, and the ready check
   * then fails on a connection already in subscriber mode and reconnects: subscribe only once it is ready.
   */
  private whenReady(): Promise<void> {
    if (this.subscriber.status === 'ready') return Promise.resolve();
    // One listener however many connects wait (a reconnect storm must not pile up listeners).
    this.ready ??= new Promise<void>((resolve) =>
      this.subscriber.once('ready', () => {
        this.ready = undefined;
        resolve();
      }),
    );
    return this.ready;
  }

  private release(userId: string, entry: UserEntry, failed = false): void {
    if (entry.sessions.size > 0 || entry.pending > 0) return;
    const current = this.users.get(userId);
    if (current === entry) this.users.delete(userId);
    else if (current) return; // a newer entry owns the channel now
    // A stale entry's SUBSCRIBE may have been re-sent on the new connection: drop it unless someone uses it.
    if ((!failed || current !== entry) && !this.closing) this.subscriber.unsubscribe(userChannel(this.deps.prefix, userId)).catch(() => {});
  }

  /** The subscription connection dropped: what was published meanwhile is lost to pub/sub, so every socket goes. */
  private subscriptionLost(): void {
    if (this.closing || (this.users.size === 0 && this.sockets.size === 0)) return;
    pushMetrics.subscriptionLosses.inc();
    this.deps.log.warn({ sockets: this.sockets.size }, 'push: fan-out subscription lost, closing sockets (4001)');
    const entries = [...this.users.values()];
    this.users.clear(); // connects waiting on these entries see they are stale and are refused (503, retry)
    for (const entry of entries) {
      for (const s of entry.sessions) s.close(CLOSE.subscriptionLost, 'push subscription lost; reconnect with since');
    }
  }

  private deliver(channel: string, message: string): void {
    if (!channel.startsWith(this.channelPrefix)) return;
    const entry = this.users.get(channel.slice(this.channelPrefix.length));
    if (!entry) return;
    let parsed: { id?: unknown; kick?: unknown };
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    if (Array.isArray(parsed.kick)) {
      for (const id of parsed.kick) {
        const s = typeof id === 'string' ? this.sockets.get(id) : undefined;
        if (s && entry.sessions.has(s)) this.closeReplaced(s);
      }
      return;
    }
    const seq = parseMessageId(typeof parsed.id === 'string' ? parsed.id : null);
    if (seq === null) return;
    for (const s of entry.sessions) {
      s.offer(seq, message);
      pushMetrics.delivered.inc();
    }
  }

  /** Re-armed after each beat, so a changed interval takes effect from the next one. */
  private scheduleBeat(): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.beat();
      if (!this.closing) this.heartbeat = this.scheduleBeat();
    }, this.deps.settings.heartbeatMs);
    t.unref();
    return t;
  }

  /**
   * Pings every socket (one that has not answered the previous ping is dead and is dropped), confirms this
   * process's sockets in the per-user slots, and pings the subscription connection: one that does not answer
   * (a half-open TCP connection delivers nothing and reports nothing) is cut, which closes the sockets with 4001.
   */
  private beat(): void {
    for (const s of this.sockets.values()) {
      if (!s.alive) {
        pushMetrics.deadDisconnects.inc();
        s.ws.terminate();
        continue;
      }
      s.alive = false;
      if (s.open) s.ws.ping();
    }
    for (const [userId, entry] of this.users) {
      this.slots.refresh(userId, [...entry.sessions].map((s) => s.socketId)).catch(() => {});
    }
    this.checkSubscriber();
  }

  /**
   * One PING outstanding at a time on the subscription connection; one unanswered for two beats (and at least
   * `subscriberTimeoutMs`, so a stalled event loop is not mistaken for a dead connection) means it is dead.
   */
  private checkSubscriber(): void {
    const sub = this.subscriber;
    if (!(sub instanceof StandaloneRedis) || sub.status !== 'ready' || this.users.size === 0) {
      this.pingSentAt = undefined;
      return;
    }
    if (this.pingSentAt === undefined) {
      const sentAt = (this.pingSentAt = Date.now());
      sub.ping().then(
        () => {
          if (this.pingSentAt === sentAt) this.pingSentAt = undefined;
        },
        () => {}, // a failed ping means the connection closed: 'close' handles that
      );
      return;
    }
    if (Date.now() - this.pingSentAt < Math.max(2 * this.deps.settings.heartbeatMs, this.deps.settings.subscriberTimeoutMs)) return;
    this.pingSentAt = undefined;
    this.deps.log.warn('push: subscription connection unresponsive, reconnecting');
    sub.disconnect(true); // emits 'close': every socket is closed with 4001, clients resume
  }

  /** Open sockets on this process (for tests and dev info). */
  get connections(): number {
    return this.wss.clients.size;
  }

  /** Users with a subscription entry on this process (tests check nothing leaks). */
  get subscribedUsers(): number {
    return this.users.size;
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.heartbeat);
    for (const s of this.sockets.values()) s.close(CLOSE.goingAway, 'server shutting down');
    // Give clients a moment to complete the close handshake, then cut whatever is left.
    const until = Date.now() + 1_000;
    while (this.wss.clients.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    // QUIT waits for a reply a dead connection never sends: bounded.
    for (const conn of [this.subscriber, this.commands]) await withTimeout(conn.quit(), 1_000).catch(() => conn.disconnect());
  }
}
