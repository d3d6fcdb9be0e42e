// A minimal live-push client: prints the events of one user as they commit.
//   TOKEN=$(TALLY_WS_SECRET=… npx tally token --user alice --ttl 1h)
//   node examples/push-client.mjs "$TOKEN" [ws://127.0.0.1:8080]
import WebSocket from 'ws';

const [token, base = 'ws://127.0.0.1:8080'] = process.argv.slice(2);
if (!token) {
  console.error('usage: node examples/push-client.mjs TOKEN [ws://host:port]');
  process.exit(2);
}

const seen = new Set(); // delivery is at-least-once: dedupe on the event id
function connect(delayMs = 1000) {
  const ws = new WebSocket(`${base}/v1/stream?token=${encodeURIComponent(token)}`);
  ws.on('open', () => console.error('connected'));
  ws.on('message', (raw) => {
    const { id, type, ts, data } = JSON.parse(raw.toString());
    if (seen.has(id)) return;
    seen.add(id);
    console.log(ts, type, JSON.stringify(data));
  });
  ws.on('unexpected-response', (_req, res) => {
    console.error(`refused: HTTP ${res.statusCode}`); // 401: token missing, forged or expired
    process.exit(1);
  });
  ws.on('error', () => {}); // 'close' follows
  // Reconnect with backoff; re-read balances over HTTP after a reconnect (events missed meanwhile are not replayed).
  ws.on('close', () => setTimeout(() => connect(Math.min(delayMs * 2, 30_000)), delayMs));
}
connect();
