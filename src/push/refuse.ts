import type { Duplex } from 'node:stream';
import type { TokenRefusal } from './token.ts';

/** HTTP answers on an upgrade request the gateway refuses (the WebSocket handshake never happens). */

export function tokenMessage(reason: TokenRefusal, maxTtlSeconds: number): string {
  switch (reason) {
    case 'missing':
      return 'missing token (GET /v1/stream?token=…)';
    case 'expired':
      return 'token expired';
    case 'too_long':
      return `token lifetime exceeds the ${maxTtlSeconds} s maximum (TALLY_WS_MAX_TTL_SECONDS)`;
    case 'no_secret':
      return 'WebSocket push is not configured (TALLY_WS_SECRET is not set)';
    default:
      return 'invalid token';
  }
}

const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 404: 'Not Found', 503: 'Service Unavailable' };

/** An HTTP answer on a socket that asked to upgrade: the handshake never happens. */
export function refuse(socket: Duplex, status: number, code: string, message: string, retryAfterSeconds?: number): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      (retryAfterSeconds ? `Retry-After: ${retryAfterSeconds}\r\n` : '') +
      'Connection: close\r\n\r\n' +
      body,
  );
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
