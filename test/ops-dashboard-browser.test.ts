import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/ops/register.ts';
import '../src/webhooks/register.ts';
import { readConfigFile } from '../src/config/store.ts';
import { EXAMPLE_CONFIG } from '../src/cli/dev.ts';
import { flushJobStats, recordAlertSent } from '../src/ops/job-stats.ts';
import { enqueueDeliveries } from '../src/webhooks/enqueue.ts';
import { startReceiver, type Receiver } from './helpers/webhook-receiver.ts';
import { ADMIN_TOKEN, createWorld, type TestWorld } from './helpers/env.ts';
import { ROOT, startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

const CHROMIUM = '/usr/bin/chromium';
// Debian's Chromium, installed once by scripts/ensure-chromium.sh when we may (root); never downloaded by playwright.
if (!existsSync(CHROMIUM) && process.getuid?.() === 0) {
  try {
    execFileSync('bash', [join(ROOT, 'scripts', 'ensure-chromium.sh')], { stdio: 'inherit', timeout: 480_000 });
  } catch {
    // reported by the skip below
  }
}
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`ops-dashboard-browser: SKIPPED — ${CHROMIUM} is missing (apt-get install chromium, or run scripts/ensure-chromium.sh as root)`);

const ARTIFACTS = join(ROOT, 'test-artifacts');
let world: TestWorld;
let tally: InProcessTally;
let browser: Browser | undefined;
let rx: Receiver | undefined;
const HOOK_SECRET = 'whsec-dashboard-0123456789';

beforeAll(async () => {
  if (!hasChromium) return;
  world = await createWorld();
  rx = await startReceiver(HOOK_SECRET);
  const example = (await readConfigFile(EXAMPLE_CONFIG)) as Record<string, unknown>;
  await world.applyConfig({ ...example, webhooks: [{ id: 'crm', url: rx.url, secret: HOOK_SECRET, events: ['alert'], allow_private_network: true }] });
  tally = await startTally(world);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
afterAll(async () => {
  await browser?.close();
  await tally?.stop();
  await rx?.close();
  await world?.drop();
});

describe('ops dashboard in a real browser', () => {
  it.skipIf(!hasChromium)('renders its charts and tables with data, logged in through the Basic auth prompt', async () => {
    // Some traffic: grants, charges of several source types, and one bad event for the dead letters.
    const users = ['ada', 'bo', 'cy', 'di'];
    for (const [i, u] of users.entries()) {
      await tally.producer.grant({ event_id: `g-${u}`, user_id: u, asset: 'points', amount: 500, source: 'recharge' });
      for (let n = 0; n <= i; n++) {
        await tally.producer.charge({ event_id: `c-${u}-${n}`, user_id: u, asset: 'points', source_type: n % 2 ? 'tts' : 'script', source_id: `s${n}`, usage: n % 2 ? { seconds: 40 } : undefined, policy: 'postpaid' } as never);
      }
    }
    await tally.producer.queue('charges').add('charge', { type: 'charge', event_id: 'bad-1', user_id: 'ada', asset: 'points', amount: -1, policy: 'postpaid', source_type: 'x', source_id: 'y' }, { jobId: 'bad-1' });
    // Webhook and alert activity: one delivered, one dead (its webhook is not in the config), one alert.
    const alert = { id: 'ob-dash-1', type: 'alert' as const, ts: new Date().toISOString(), user_id: 'ada', data: { kind: 'low_balance', asset: 'points', balance: 3, threshold: 10 } };
    await enqueueDeliveries(tally.started.ctx, [alert]);
    await enqueueDeliveries(tally.started.ctx, [alert], [{ id: 'gone', url: rx!.url, secret: HOOK_SECRET, events: ['alert'], allow_private_network: true }]);
    recordAlertSent('low_balance', 'points');
    await waitFor('the webhook activity', async () => {
      await flushJobStats();
      const r = await tally.http('GET', '/admin/dashboard/data', undefined, ADMIN_TOKEN);
      return r.body.webhooks.recent_dead.length === 1 && r.body.webhooks.endpoints.some((e: { webhook: string; by_result: Record<string, number> }) => e.webhook === 'crm' && e.by_result.delivered === 1) ? true : undefined;
    }, 30_000, 500);
    await waitFor('the jobs to be applied and counted', async () => {
      const r = await tally.http('GET', '/admin/dashboard/data', undefined, ADMIN_TOKEN);
      const n = Object.values(r.body.throughput.by_queue as Record<string, number[]>).flat().reduce((a, b) => a + b, 0);
      return n >= 15 && r.body.dead_letters.total >= 1 ? true : undefined;
    }, 30_000, 1000);

    const context = await browser!.newContext({ httpCredentials: { username: 'admin', password: ADMIN_TOKEN }, viewport: { width: 1280, height: 1100 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    const res = await page.goto(`${tally.base}/admin/dashboard`);
    expect(res?.status()).toBe(200);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });

    for (const id of ['chart-throughput', 'chart-outcomes', 'chart-usage']) {
      expect(await page.locator(`#${id} canvas`).count(), id).toBe(1);
      expect(Number(await page.locator(`#${id}`).getAttribute('data-points')), id).toBeGreaterThan(0);
    }
    expect(await page.locator('#chart-throughput .u-legend').innerText()).toMatch(/charges[\s\S]*grants|grants[\s\S]*charges/);
    expect(await page.locator('#chart-outcomes .u-legend').innerText()).toContain('applied');
    expect(await page.locator('#top').innerText()).toMatch(/di\s+points\s+\d/);
    expect(await page.locator('#reasons').innerText()).toContain('invalid_payload');
    expect(await page.locator('#outcomes').innerText()).toMatch(/charges\s+applied\s+10\b/);
    expect(await page.locator('#outcomes').innerText()).toMatch(/charges\s+failed\s+1\b/);
    expect(await page.locator('#queues').innerText()).toContain('affinity-events');
    expect(Number((await page.locator('#t-dead').innerText()).replace(/,/g, ''))).toBeGreaterThanOrEqual(1);
    expect(await page.locator('#webhooks').innerText()).toMatch(/crm\s+1\s+0\s+0\s+0\s+0\s+0\s+0\s+≤/);
    expect(await page.locator('#dead-deliveries').innerText()).toMatch(/gone\s+alert ob-dash-1\s+1\s+unknown_webhook/);
    expect(await page.locator('#alerts').innerText()).toMatch(/low_balance\s+points\s+1/);
    expect(await page.locator('#t-webhooks-dead').innerText()).toBe('1');

    // The usage tabs switch the window.
    await page.click('#usage-tabs button[data-w="30d"]');
    expect(await page.locator('#top-window').innerText()).toBe('(30d)');

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'ops-dashboard.png'), fullPage: true });
    expect(errors).toEqual([]);
    await context.close();

    // Without credentials the browser gets the 401 challenge (headless Chromium gives up on it), not the page.
    const anon = await browser!.newContext();
    const denied = await (await anon.newPage()).goto(`${tally.base}/admin/dashboard`).then((r) => String(r?.status()), (e: Error) => e.message);
    expect(denied).toMatch(/^401$|ERR_INVALID_AUTH_CREDENTIALS/);
    await anon.close();
  });
});
