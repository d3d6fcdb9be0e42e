import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_CONFIG } from '../src/cli/dev.ts';
import { createLogger } from '../src/log.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { spawnTally, waitFor } from './helpers/tally.ts';

let world: TestWorld;
beforeAll(async () => {
  world = await createWorld();
});
afterAll(async () => {
  await world?.drop();
});

/** Runs `tally ARGS` until its stderr says it started, then stops it with SIGTERM; returns what it wrote. */
async function runUntilStarted(args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const child: ChildProcess = spawnTally(world, args, { LOG_LEVEL: 'info', ...env });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  try {
    await waitFor('tally to start', async () => stderr.includes('tally started') || child.exitCode !== null, 60_000, 100);
  } finally {
    child.kill('SIGTERM');
  }
  const [code] = (await once(child, 'exit')) as [number | null];
  return { stdout, stderr, code };
}

function sink(): { stream: Writable; text: () => string } {
  let out = '';
  return { stream: new Writable({ write: (chunk, _enc, done) => ((out += String(chunk)), done()) }), text: () => out };
}

describe('logs', () => {
  it('`tally dev` prints human-readable lines (pino-pretty), not JSON', async () => {
    const { stdout, stderr, code } = await runUntilStarted(['dev']);
    expect(code).toBe(0);
    expect(stdout).toContain('tally is running');
    const line = stderr.split('\n').find((l) => l.includes('tally started'))!;
    expect(line).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(tally\): tally started/);
    expect(() => JSON.parse(line)).toThrow();
  });

  it('`tally start` stays JSON, one object per line', async () => {
    const { stderr, code } = await runUntilStarted(['start', '--role', 'api']);
    expect(code).toBe(0);
    const lines = stderr.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
    expect(lines.map((l) => JSON.parse(l).msg)).toContain('tally started');
  });

  it('a SIGTERM that arrives while it is still starting stops it gracefully once started (exit 0), not by the signal', async () => {
    // PM2 may stop a process it has just launched; CI once sent SIGTERM right after "tally started" was logged and
    // before the handler was installed, and the process died by the signal (exit code null).
    const child = spawnTally(world, ['start', '--role', 'api'], { LOG_LEVEL: 'info', TALLY_CONFIG: EXAMPLE_CONFIG });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
    await waitFor('the config applied at start', async () => stderr.includes('config applied at start') || child.exitCode !== null, 60_000, 2);
    child.kill('SIGTERM');
    const [code, signal] = await exited;
    expect({ code, signal, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    const msgs = stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l).msg as string);
    expect(msgs.indexOf('signal received')).toBeGreaterThan(msgs.indexOf('tally started'));
  });

  it.each(['json', 'pretty'] as const)('keeps secrets out of %s lines wherever a caller puts them', async (format) => {
    const out = sink();
    const log = createLogger('info', 'tally', format, out.stream);
    log.info({ webhook: { id: 'billing', secret: 'whsec-super-secret-1' }, headers: { authorization: 'Bearer tok-secret-2', 'x-tally-signature': 't=1,v1=sig-secret-3' } }, 'one');
    log.info({ doc: { webhooks: [{ id: 'a', secret: 'whsec-super-secret-4' }] }, req: { headers: { authorization: 'Basic secret-5' } } }, 'two');
    log.info({ env: { TALLY_API_TOKEN: 'x' }, auth: { token: 'tok-secret-6', password: 'pw-secret-7' } }, 'three');
    await new Promise((r) => setImmediate(r));
    const text = out.text();
    expect(text).toContain('billing');
    for (const s of ['whsec-super-secret-1', 'tok-secret-2', 'sig-secret-3', 'whsec-super-secret-4', 'secret-5', 'tok-secret-6', 'pw-secret-7']) expect(text).not.toContain(s);
    expect(text).toContain('[redacted]');
  });
});
