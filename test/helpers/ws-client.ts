import { WebSocket, type ClientOptions } from 'ws';
import { signToken } from '../../src/push/token.ts';
import { WS_SECRET } from './env.ts';
import { waitFor } from './tally.ts';

export interface PushClient {
  ws: WebSocket;
  messages: { id: string; type: string; ts: string; data: any }[];
  closed: boolean;
  /** Waits until `n` messages (matching `pred`, if given) have arrived and returns them. */
  waitFor(n: number, pred?: (m: PushClient['messages'][number]) => boolean, timeoutMs?: number): Promise<PushClient['messages']>;
  close(): void;
}

export function tokenFor(userId: string, ttlSeconds = 3600, secret = WS_SECRET): string {
  return signToken(secret, { userId, exp: Math.floor(Date.now() / 1000) + ttlSeconds });
}

export function wsUrl(httpBase: string, token: string): string {
  return `${httpBase.replace(/^http/, 'ws')}/v1/stream?token=${encodeURIComponent(token)}`;
}

/** A real WebSocket client, connected (handshake done) when this resolves. */
export async function connectClient(httpBase: string, userId: string, opts: ClientOptions = {}): Promise<PushClient> {
  const ws = new WebSocket(wsUrl(httpBase, tokenFor(userId)), opts);
  const client: PushClient = {
    ws,
    messages: [],
    closed: false,
    async waitFor(n, pred = () => true, timeoutMs = 15_000) {
      return waitFor(`${n} push messages for ${userId}`, async () => {
        const got = client.messages.filter(pred);
        return got.length >= n ? got : undefined;
      }, timeoutMs, 20);
    },
    close: () => ws.close(),
  };
  ws.on('message', (raw) => client.messages.push(JSON.parse(raw.toString())));
  ws.on('close', () => {
    client.closed = true;
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return client;
}

/** The HTTP status a refused upgrade answered with (the handshake must not happen). */
export function upgradeStatus(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.close();
      reject(new Error('upgrade unexpectedly accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', (err) => reject(err));
  });
}
