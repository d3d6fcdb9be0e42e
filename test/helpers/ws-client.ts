import { WebSocket, type ClientOptions } from 'ws';
import { signToken } from '../../src/push/token.ts';
import { WS_SECRET } from './env.ts';
import { waitFor } from './tally.ts';

export interface PushMessageSeen {
  id: string;
  type: string;
  ts: string;
  data: any;
}

export interface PushClient {
  ws: WebSocket;
  messages: PushMessageSeen[];
  /** Receipt time (performance.now()) of each message, same index as `messages`. */
  receivedAt: number[];
  closed: boolean;
  /** The close code and reason, once closed. */
  closeCode?: number;
  closeReason?: string;
  /** Waits until `n` messages (matching `pred`, if given) have arrived and returns them. */
  waitFor(n: number, pred?: (m: PushMessageSeen) => boolean, timeoutMs?: number): Promise<PushMessageSeen[]>;
  /** Waits for the socket to close and returns its close code. */
  waitClosed(timeoutMs?: number): Promise<number>;
  close(): void;
}

export interface ConnectOptions extends ClientOptions {
  /** `?since=` (resume). */
  since?: string;
  /** Token lifetime in seconds (default 1 h). */
  ttlSeconds?: number;
  /** A token to use as is (overrides ttlSeconds). */
  token?: string;
}

export function tokenFor(userId: string, ttlSeconds = 3600, secret = WS_SECRET): string {
  return signToken(secret, { userId, exp: Math.floor(Date.now() / 1000) + ttlSeconds });
}

export function wsUrl(httpBase: string, token: string, since?: string): string {
  const q = since === undefined ? '' : `&since=${encodeURIComponent(since)}`;
  return `${httpBase.replace(/^http/, 'ws')}/v1/stream?token=${encodeURIComponent(token)}${q}`;
}

/** A real WebSocket client, connected (handshake done) when this resolves; rejects if the upgrade is refused. */
export async function connectClient(httpBase: string, userId: string, opts: ConnectOptions = {}): Promise<PushClient> {
  const { since, ttlSeconds, token, ...wsOpts } = opts;
  const ws = new WebSocket(wsUrl(httpBase, token ?? tokenFor(userId, ttlSeconds), since), wsOpts);
  const client: PushClient = {
    ws,
    messages: [],
    receivedAt: [],
    closed: false,
    async waitFor(n, pred = () => true, timeoutMs = 15_000) {
      return waitFor(`${n} push messages for ${userId}`, async () => {
        const got = client.messages.filter(pred);
        return got.length >= n ? got : undefined;
      }, timeoutMs, 20);
    },
    async waitClosed(timeoutMs = 15_000) {
      await waitFor(`socket of ${userId} closed`, async () => client.closed, timeoutMs, 20);
      return client.closeCode!;
    },
    close: () => ws.close(),
  };
  ws.on('message', (raw) => {
    client.messages.push(JSON.parse(raw.toString()));
    client.receivedAt.push(performance.now());
  });
  ws.on('close', (code, reason) => {
    client.closeCode = code;
    client.closeReason = reason.toString();
    client.closed = true;
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }));
    });
  });
  return client;
}

/** The HTTP status a refused upgrade answered with (the handshake must not happen). */
export function upgradeStatus(url: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.close();
      reject(new Error('upgrade unexpectedly accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    ws.once('error', (err) => reject(err));
  });
}
