import net from 'node:net';

/** What came back on a raw socket: the parsed head and body (if any), and whether the server closed it. */
export interface RawResponse {
  status: number | null;
  headers: Record<string, string>;
  body: string;
  closed: boolean;
  ms: number;
}

function parse(text: string): Pick<RawResponse, 'status' | 'headers' | 'body'> {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return { status: null, headers: {}, body: '' };
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(end + 4) };
}

/**
 * Opens a socket, lets `drive` write whatever (slowly, partially, garbage), and resolves with the response once
 * it is complete (keep-alive) or the server closed the socket, or when `waitMs` passes. Real sockets: no client
 * library tidies up.
 */
export function rawExchange(port: number, drive: (socket: net.Socket) => void | Promise<void>, waitMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parse(text), closed, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
      const head = parse(text);
      const len = Number(head.headers['content-length'] ?? NaN);
      // A complete keep-alive response is the answer; after a `Connection: close` one, wait for the server's close.
      if (head.status !== null && Number.isFinite(len) && Buffer.byteLength(head.body, 'latin1') >= len && head.headers.connection !== 'close') finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', () => void Promise.resolve(drive(socket)).catch(() => finish(true)));
  });
}

export function head(lines: string[]): string {
  return `${lines.join('\r\n')}\r\n\r\n`;
}
