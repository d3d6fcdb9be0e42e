import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { benchLatency } from '../bench/latency.ts';
import { verifyCharges } from '../bench/ledger-verify.ts';
import { createBenchWorld } from '../bench/world.ts';
import { parseBenchOptions, wants } from '../bench/options.ts';
import { categoryOf, summariseProfile } from '../bench/profile-summary.ts';
import { benchSoak } from '../bench/soak.ts';
import { benchTallyBatch } from '../bench/tally-batch.ts';
import { PG_BASE, REDIS_URL } from './helpers/env.ts';

// Small sizes: the same code `npm run bench -- --soak --latency` runs with a million events.
const base = ['--users', '40', '--runs', '1', '--pg', PG_BASE, '--redis', REDIS_URL, '--concurrency', '64'];
const quiet = () => {};

describe('bench parts of issue 13', () => {
  it('batched charges: applied and verified where batch jobs exist, else skipped with the workers\' reason', async () => {
    const opts = parseBenchOptions([...base, '--jobs', '600', '--batch-events', '200']);
    const m = await benchTallyBatch(opts, 'uniform', 1, quiet);
    expect(m.name).toBe('batch-uniform');
    expect(m.unit).toBe('events/s');
    if (m.skipped) {
      expect(m.skipped).toMatch(/^batch jobs not supported by these workers: invalid_payload/);
    } else {
      expect(m).toMatchObject({ ok: true, count: 400 }); // the first job of 200 ran untimed
      expect(m.notes).toBeUndefined();
    }
  }, 120_000);

  it('soak: samples the worker process, verifies the ledger, writes the samples and an SVG plot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-soak-'));
    const svg = join(dir, 'soak.svg');
    const opts = parseBenchOptions([...base, '--soak-events', '3000', '--sample-seconds', '1', '--soak-svg', svg]);
    const [soak, drift, spread, eld] = await benchSoak(opts, quiet);
    expect(soak).toMatchObject({ name: 'soak', unit: 'events/s', count: 3000, ok: true });
    expect(drift!.name).toBe('soak-rss-drift');
    expect(spread!.name).toBe('soak-rss-spread');
    expect(spread!.rate).toBeGreaterThanOrEqual(0);
    expect(eld!.name).toBe('soak-eld-p99');
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg[\s\S]*worker memory \(MB\)[\s\S]*event-loop delay \(ms\)/);
    const json = JSON.parse(readFileSync(join(dir, 'soak.json'), 'utf8')) as { points: { rssMb: number }[] };
    expect(json.points.length).toBeGreaterThanOrEqual(2);
    expect(json.points.every((p) => p.rssMb > 10)).toBe(true);
  }, 180_000);

  it('latency: open-loop levels at fractions of the peak, p50 ≤ p99, every event applied and verified', async () => {
    const opts = parseBenchOptions([...base, '--latency-seconds', '2', '--latency-levels', '0.5']);
    const rows = await benchLatency(opts, 200, 1, quiet);
    expect(rows.map((r) => r.name)).toEqual(['latency-p50@50%', 'latency-p99@50%']);
    expect(rows.every((r) => r.ok === true && r.versus === null)).toBe(true);
    expect(rows[0]!.rate).toBeGreaterThan(0);
    expect(rows[0]!.rate).toBeLessThanOrEqual(rows[1]!.rate);
    expect(rows[0]!.count).toBe(100); // 50 % of 200/s for 2 s, less the first second
  }, 120_000);

  it('verification fails a drain that applied less than it should, and says what is missing', async () => {
    const world = await createBenchWorld(parseBenchOptions(base), 'verify_test');
    try {
      const check = await verifyCharges(world.sql, 'bench-none-', 2, 20);
      expect(check.ok).toBe(false);
      expect(check.problems).toEqual(expect.arrayContaining(['0 decisions for 0 of 2 events', 'applied 0 of 2', '0 consume entries for 2 charges', 'Σ balance 0, expected 10']));
    } finally {
      await world.drop();
    }
  });

  it('soak and latency run when flagged or named in --only; the default parts unless --only names others', () => {
    const plain = parseBenchOptions([]);
    expect([wants(plain, 'noop'), wants(plain, 'soak'), wants(plain, 'latency')]).toEqual([true, false, false]);
    const flagged = parseBenchOptions(['--soak', '--latency']);
    expect([wants(flagged, 'noop'), wants(flagged, 'soak'), wants(flagged, 'latency')]).toEqual([true, true, true]);
    const only = parseBenchOptions(['--only', 'soak']);
    expect([wants(only, 'noop'), wants(only, 'soak'), wants(only, 'latency')]).toEqual([false, true, false]);
    expect(() => parseBenchOptions(['--noop-concurrency', '50,x'])).toThrow(/noop-concurrency/);
  });

  it('profile summary: self time by category from the samples, idle left out', () => {
    expect(categoryOf('moveToFinished', 'file:///x/node_modules/bullmq/dist/esm/classes/job.js')).toBe('BullMQ');
    expect(categoryOf('handle', 'file:///x/node_modules/postgres/src/connection.js')).toBe('postgres.js');
    expect(categoryOf('applyLedgerCommands', 'file:///x/src/ledger/apply.ts')).toBe('tally (src/)');
    expect(categoryOf('stringify', '')).toBe('JSON');
    const node = (id: number, functionName: string, url: string) => ({ id, callFrame: { functionName, url, lineNumber: 0 } });
    const s = summariseProfile({
      nodes: [node(1, '(root)', ''), node(2, '(idle)', ''), node(3, 'moveToActive', '/n/node_modules/bullmq/a.js'), node(4, 'stringify', '')],
      samples: [2, 3, 3, 4],
      timeDeltas: [5000, 1000, 1000, 2000],
      startTime: 0,
      endTime: 9000,
    });
    expect(s.busyMs).toBe(4);
    expect(s.categories).toEqual([
      { category: 'BullMQ', ms: 2, share: 0.5 },
      { category: 'JSON', ms: 2, share: 0.5 },
    ]);
  });
});
