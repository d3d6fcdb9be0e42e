import type { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnv } from '../src/config/env.ts';
import { onWorkerCreated } from '../src/workers/worker-registry.ts';
import { API_TOKEN, createWorld, type TestWorld } from './helpers/env.ts';
import { head, rawExchange } from './helpers/raw-http.ts';
import { startTally, type InProcessTally } from './helpers/tally.ts';

let world: TestWorld;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
});
afterAll(async () => {
  await world?.drop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Headers of an authenticated JSON request announcing `length` body bytes. */
const slowPost = (length: number, token: string | null = API_TOKEN) =>
  head(['POST /v1/quotes HTTP/1.1', 'Host: x', 'Content-Type: application/json', `Content-Length: ${length}`, ...(token ? [`Authorization: Bearer ${token}`] : [])]);

describe('TALLY_HTTP_REQUEST_TIMEOUT_MS (issue 10 item 4)', () => {
  it('defaults to 30 s', () => {
    expect(parseEnv({}).TALLY_HTTP_REQUEST_TIMEOUT_MS).toBe(30_000);
  });

  describe('with a 1 s timeout', () => {
    let tally: InProcessTally;
    let port: number;
    beforeAll(async () => {
      tally = await startTally(world, ['api'], { TALLY_HTTP_REQUEST_TIMEOUT_MS: '1000' });
      port = Number(new URL(tally.base).port);
    });
    afterAll(async () => {
      await tally?.stop();
    });

    it('30 slow-body sockets each get a 408 in the error shape and are closed; the server keeps answering', async () => {
      const t0 = performance.now();
      const results = await Promise.all(
        Array.from({ length: 30 }, () =>
          rawExchange(port, async (s) => {
            s.write(slowPost(1000));
            // One byte every 200 ms: never finishes within the timeout, never idle long enough to look dead.
            for (let i = 0; i < 100 && !s.destroyed; i++) {
              s.write('{');
              await sleep(200);
            }
          }, 8000),
        ),
      );
      for (const r of results) {
        expect(r.status).toBe(408);
        expect(JSON.parse(r.body)).toEqual({ error: { code: 'request_timeout', message: 'the request did not arrive in time' } });
        expect(r.closed).toBe(true);
        expect(r.ms).toBeLessThan(4000); // 1 s timeout + Node's check interval (100 ms here) + load
      }
      expect(performance.now() - t0).toBeLessThan(6000);
      expect((await fetch(`${tally.base}/healthz`)).status).toBe(200);
    });

    it('headers that trickle in (slowloris) are cut off too', async () => {
      const r = await rawExchange(port, async (s) => {
        for (const line of ['GET /healthz HTTP/1.1\r\n', 'Host: x\r\n', ...Array.from({ length: 50 }, (_, i) => `X-${i}: y\r\n`)]) {
          if (s.destroyed) return;
          s.write(line);
          await sleep(150);
        }
      }, 8000);
      expect(r.closed).toBe(true);
      expect(r.ms).toBeLessThan(4000);
      if (r.status !== null) expect(r.status).toBe(408);
    });

    it('a slow body without a token is refused at once, not awaited', async () => {
      const r = await rawExchange(port, (s) => void s.write(slowPost(1_000_000, null)), 5000);
      expect(r.status).toBe(401);
      expect(r.closed).toBe(true);
      expect(r.ms).toBeLessThan(800);
    });

    it('a body that arrives in time is served', async () => {
      const body = JSON.stringify({ user_id: 'u1', asset: 'points', source_type: 'script' });
      const r = await rawExchange(port, async (s) => {
        s.write(slowPost(Buffer.byteLength(body)));
        await sleep(300);
        s.write(body);
      }, 3000);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ required: 5 });
    });
  });
});

describe('shutdown is not held by HTTP clients', () => {
  it('workers start closing at once while a slow client is still sending; the client is cut after the grace period', async () => {
    const closing: number[] = [];
    const stopWatching = onWorkerCreated((w: Worker) => w.on('closing', () => closing.push(performance.now())));
    const tally = await startTally(world, ['api', 'worker'], { TALLY_HTTP_REQUEST_TIMEOUT_MS: '120000' });
    stopWatching();
    const port = Number(new URL(tally.base).port);
    // An idle keep-alive connection and a request whose body never finishes.
    await fetch(`${tally.base}/healthz`, { headers: { connection: 'keep-alive' } });
    const slow = rawExchange(port, async (s) => {
      s.write(slowPost(1000));
      for (let i = 0; i < 200 && !s.destroyed; i++) {
        s.write(' ');
        await sleep(100);
      }
    }, 30_000);
    await sleep(300);

    const t0 = performance.now();
    const stopped = tally.stop();
    await sleep(1000);
    expect(closing.length).toBeGreaterThanOrEqual(3); // the ledger workers and the maintenance worker, at least
    for (const at of closing) expect(at - t0).toBeLessThan(1000);
    await stopped;
    const stopMs = performance.now() - t0;
    expect(stopMs).toBeLessThan(15_000); // HTTP_CLOSE_GRACE_MS (10 s), not the client's pace
    const cut = await slow;
    expect(cut.closed).toBe(true);
  });
});
