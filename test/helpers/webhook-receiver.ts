import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A webhook receiver as a tally user would write one, verifying signatures the way Stripe documents for its
 * own (`t=…,v1=…` header; HMAC-SHA256 over `t + "." + raw body`; constant-time compare against every v1;
 * timestamp within a tolerance). Written independently of src/webhooks/signature.ts on purpose.
 */
export function stripeStyleVerify(secret: string, header: string | undefined, payload: string, toleranceS = 300): 'ok' | 'no_header' | 'bad_signature' | 'too_old' {
  if (!header) return 'no_header';
  const items = header.split(',').map((kv) => kv.split('='));
  const t = items.find(([k]) => k === 't')?.[1];
  const sigs = items.filter(([k]) => k === 'v1').map(([, v]) => v ?? '');
  if (!t || sigs.length === 0) return 'no_header';
  const expected = createHmac('sha256', secret).update(`${t}.${payload}`, 'utf8').digest();
  const match = sigs.some((s) => {
    const given = Buffer.from(s, 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!match) return 'bad_signature';
  if (Math.abs(Date.now() / 1000 - Number(t)) > toleranceS) return 'too_old';
  return 'ok';
}

export interface Received {
  n: number;
  headers: IncomingHttpHeaders;
  body: string;
  verified: ReturnType<typeof stripeStyleVerify>;
  /** ms since the receiver started: when the request arrived, and when it was answered. */
  at: number;
  answeredAt?: number;
}

export type Behaviour = (r: Received) => { status: number; delayMs?: number; headers?: Record<string, string> };

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  setBehaviour(b: Behaviour): void;
  close(): Promise<void>;
}

export async function startReceiver(secret: string, behaviour: Behaviour = () => ({ status: 200 })): Promise<Receiver> {
  const started = Date.now();
  const received: Received[] = [];
  let behave = behaviour;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const r: Received = { n: received.length + 1, headers: req.headers, body, verified: stripeStyleVerify(secret, req.headers['x-tally-signature'] as string | undefined, body), at: Date.now() - started };
      received.push(r);
      const answer = behave(r);
      const send = () => {
        r.answeredAt = Date.now() - started;
        res.writeHead(answer.status, answer.headers ?? {});
        res.end('ok');
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    received,
    setBehaviour: (b) => (behave = b),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
