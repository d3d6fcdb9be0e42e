import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RedisClient as Redis } from '../redis.ts';
import { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../log.ts';
import { createRedis } from '../redis.ts';
import { userChannel } from './message.ts';
import { pushMetrics } from './metrics.ts';
import type { PushSettings } from './settings.ts';
import { verifyToken } from './token.ts';

export const STREAM_PATH = '/v1/stream';
/** Longest a connect waits for its user's channel subscription before it is refused (503). */
const SUBSCRIBE_TIMEOUT_MS = 5_000;

export interface GatewayDeps {
  redisUrl: string;
  prefix: string;
  secret: string | undefined;
  log: Logger;
  settings: Pick<PushSettings, 'heartbeatMs' | 'maxBufferedBytes'>;
}

/** A user's sockets on this process, and its channel subscription (held while any socket or connect is pending). */
interface UserEntry {
  sockets: Set<WebSocket>;
  pending: number;
  subscribed: Promise<unknown>;
}

interface Live {
  alive: boolean;
}

/**
 * The WebSocket gateway of one API process. Each process subscribes to the pub/sub channels of the users it
 * has sockets for and writes each message to those sockets. A write never waits: a socket whose unsent
 * buffer exceeds the bound is dropped, so one slow or dead client cannot hold up the others or grow memory.
 */
export class PushGateway {
  private readonly users = new Map<string, UserEntry>();
  private readonly live = new WeakMap<WebSocket, Live>();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false, clientTracking: true });
  private readonly subscriber: Redis;
  private heartbeat: NodeJS.Timeout;
  private readonly channelPrefix: string;
  private closing = false;

  constructor(private readonly deps: GatewayDeps) {
    this.channelPrefix = userChannel(deps.prefix, '');
    this.subscriber = createRedis(deps.redisUrl);
    this.subscriber.on('error', (err) => deps.log.warn({ err: { message: err.message } }, 'push subscriber connection error'));
    this.subscriber.on('message', (channel: string, message: string) => this.deliver(channel, message));
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
      void this.upgrade(req, socket, head, url.searchParams.get('token'));
    });
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, token: string | null): Promise<void> {
    if (this.closing) return refuse(socket, 503, 'unavailable', 'server shutting down');
    const check = verifyToken(this.deps.secret, token);
    if (!check.ok) {
      pushMetrics.refused.inc({ reason: check.reason });
      return refuse(socket, 401, 'unauthorized', tokenMessage(check.reason));
    }
    const userId = check.claims.userId;
    const entry = this.retain(userId);
    entry.pending++;
    try {
      // Subscribed before the handshake completes: a client that sees `open` receives every later event.
      await withTimeout(entry.subscribed, SUBSCRIBE_TIMEOUT_MS);
    } catch (err) {
      entry.pending--;
      this.release(userId, entry, true);
      this.deps.log.warn({ err: { message: (err as Error).message } }, 'push: subscribe failed, connection refused');
      pushMetrics.refused.inc({ reason: 'unavailable' });
      return refuse(socket, 503, 'unavailable', 'push fanout unavailable, retry later');
    }
    entry.pending--;
    if (socket.destroyed || this.closing) {
      this.release(userId, entry);
      if (!socket.destroyed) refuse(socket, 503, 'unavailable', 'server shutting down');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.connected(ws, userId, entry));
  }

  private connected(ws: WebSocket, userId: string, entry: UserEntry): void {
    entry.sockets.add(ws);
    this.live.set(ws, { alive: true });
    pushMetrics.connections.inc();
    ws.on('pong', () => {
      const l = this.live.get(ws);
      if (l) l.alive = true;
    });
    ws.on('error', () => {}); // the close that follows does the cleanup
    ws.on('close', () => {
      pushMetrics.connections.dec();
      entry.sockets.delete(ws);
      this.release(userId, entry);
    });
  }

  private retain(userId: string): UserEntry {
    let entry = this.users.get(userId);
    if (!entry) {
      const channel = userChannel(this.deps.prefix, userId);
      entry = { sockets: new Set(), pending: 0, subscribed: this.whenReady().then(() => this.subscriber.subscribe(channel)) };
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
    return new Promise((resolve) => this.subscriber.once('ready', () => resolve()));
  }

  private release(userId: string, entry: UserEntry, failed = false): void {
    if (entry.sockets.size > 0 || entry.pending > 0 || this.users.get(userId) !== entry) return;
    this.users.delete(userId);
    if (!failed && !this.closing) this.subscriber.unsubscribe(userChannel(this.deps.prefix, userId)).catch(() => {});
  }

  private deliver(channel: string, message: string): void {
    if (!channel.startsWith(this.channelPrefix)) return;
    const entry = this.users.get(channel.slice(this.channelPrefix.length));
    if (!entry) return;
    for (const ws of entry.sockets) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      if (ws.bufferedAmount + Buffer.byteLength(message) > this.deps.settings.maxBufferedBytes) {
        // Too far behind: drop it (the client reconnects and re-reads state) rather than buffer without bound.
        pushMetrics.slowDisconnects.inc();
        this.deps.log.warn({ buffered: ws.bufferedAmount }, 'push: slow consumer disconnected');
        ws.terminate();
        continue;
      }
      ws.send(message);
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

  /** Pings every socket; one that has not answered the previous ping is dead and is dropped. */
  private beat(): void {
    for (const ws of this.wss.clients) {
      const l = this.live.get(ws);
      if (!l) continue;
      if (!l.alive) {
        pushMetrics.deadDisconnects.inc();
        ws.terminate();
        continue;
      }
      l.alive = false;
      ws.ping();
    }
  }

  /** Open sockets on this process (for tests and dev info). */
  get connections(): number {
    return this.wss.clients.size;
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.heartbeat);
    for (const ws of this.wss.clients) ws.close(1001, 'server shutting down');
    // Give clients a moment to complete the close handshake, then cut whatever is left.
    const until = Date.now() + 1_000;
    while (this.wss.clients.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }
}

function tokenMessage(reason: string): string {
  switch (reason) {
    case 'missing':
      return 'missing token (GET /v1/stream?token=…)';
    case 'expired':
      return 'token expired';
    case 'no_secret':
      return 'WebSocket push is not configured (TALLY_WS_SECRET is not set)';
    default:
      return 'invalid token';
  }
}

const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 404: 'Not Found', 503: 'Service Unavailable' };

/** An HTTP answer on a socket that asked to upgrade: the handshake never happens. */
function refuse(socket: Duplex, status: number, code: string, message: string): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
