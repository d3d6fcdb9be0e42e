import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTransient } from '../src/errors.ts';
// @ts-expect-error a plain .mjs build script, no types
import { FILES, MARKER, PATCHED_VERSION, REPLACEMENTS, patchPackage, patchText } from '../scripts/patch-postgres.mjs';
import { PG_BASE, createWorld, type TestWorld } from './helpers/env.ts';
import { ROOT } from './helpers/tally.ts';

/**
 * Issue 10 item 11: a PostgreSQL connection that dies under a transaction must fail that transaction as a transient
 * fault, never kill the process (postgres.js 3.4.9 threw `Cannot read properties of null (reading 'write')` from a
 * timer: porsager/postgres#1154, #1208). Fixed by scripts/patch-postgres.mjs, applied on every `npm ci`.
 */
const PKG = join(ROOT, 'node_modules', 'postgres');
const replacements = REPLACEMENTS as [string, string][];

function unpatch(text: string): string {
  return replacements.reduce((t, [pristine, patched]) => t.replace(patched, pristine), text);
}

describe('the postgres.js patch', () => {
  it('is applied to both builds of the installed client, which is the pinned version', () => {
    expect(JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8')).version).toBe(PATCHED_VERSION);
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).dependencies.postgres).toBe(PATCHED_VERSION);
    for (const file of FILES as string[]) {
      const text = readFileSync(join(PKG, file), 'utf8');
      expect(text.split(MARKER).length - 1, file).toBe(replacements.length);
    }
  });

  it('re-applies exactly, is idempotent, and refuses a client it was not written for', () => {
    const installed = readFileSync(join(PKG, 'src/connection.js'), 'utf8');
    const pristine = unpatch(installed);
    expect(pristine).not.toContain(MARKER);
    expect(patchText(pristine)).toBe(installed);
    expect(patchText(installed)).toBe(installed);
    expect(() => patchText(pristine.replace('function nextWrite(fn) {', 'function nextWrite(fn, x) {'))).toThrow(/not there exactly once/);

    const dir = mkdtempSync(join(tmpdir(), 'tally-pg-patch-'));
    try {
      mkdirSync(join(dir, 'src'));
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ version: PATCHED_VERSION }));
      writeFileSync(join(dir, 'src/connection.js'), pristine);
      // A hard link elsewhere (a package manager's store): the patch must not write through it.
      linkSync(join(dir, 'src/connection.js'), join(dir, 'store-copy.js'));
      expect(patchPackage(dir)).toEqual(['src/connection.js']);
      expect(readFileSync(join(dir, 'src/connection.js'), 'utf8')).toBe(installed);
      expect(readFileSync(join(dir, 'store-copy.js'), 'utf8')).toBe(pristine);
      expect(statSync(join(dir, 'store-copy.js')).nlink).toBe(1);
      expect(patchPackage(dir)).toEqual([]);
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ version: '3.4.10' }));
      expect(() => patchPackage(dir)).toThrow(/written for 3\.4\.9/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs on npm ci (package.json postinstall), as a command', () => {
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.postinstall).toBe('node scripts/patch-postgres.mjs');
    const dir = mkdtempSync(join(tmpdir(), 'tally-pg-patch-'));
    try {
      mkdirSync(join(dir, 'cjs/src'), { recursive: true });
      copyFileSync(join(PKG, 'package.json'), join(dir, 'package.json'));
      writeFileSync(join(dir, 'cjs/src/connection.js'), unpatch(readFileSync(join(PKG, 'cjs/src/connection.js'), 'utf8')));
      const run = spawnSync(process.execPath, [join(ROOT, 'scripts/patch-postgres.mjs'), dir], { encoding: 'utf8' });
      expect(run.status).toBe(0);
      expect(run.stdout).toMatch(/patched cjs\/src\/connection.js/);
      expect(readFileSync(join(dir, 'cjs/src/connection.js'), 'utf8')).toBe(readFileSync(join(PKG, 'cjs/src/connection.js'), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a PostgreSQL backend killed under a transaction', () => {
  let world: TestWorld;
  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world?.drop();
  });

  /** Runs a fixture (test/fixtures/NAME) in its own Node process against this world's database, to its exit. */
  async function runFixture(name: string, n: number): Promise<{ code: number | null; out: string; err: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/fixtures', name), `${PG_BASE}/${world.dbName}`, String(n)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    return { code, out, err };
  }

  it('fails that transaction as a transient fault, round after round, and never the process', async () => {
    const rounds = 30;
    const { code, out, err } = await runFixture('pg-backend-death.ts', rounds);
    expect(err).not.toMatch(/TypeError|Cannot read properties of null/);
    expect({ code, err: err.slice(0, 2000) }).toEqual({ code: 0, err: '' });
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(rounds);
    for (const l of lines) {
      expect(l.tx, `round ${l.round}`).toMatchObject({ ok: false, transient: true });
      // A query queued for the pool meanwhile either ran or failed transiently; the next one always runs.
      for (const o of l.others) expect(o === 'ok' || isTransient({ code: o }), `round ${l.round}: ${o}`).toBe(true);
      expect(l.next).toBe(1);
    }
  });

  it('a session killed while it fetches its array types (its first statement) never kills the process, and the next one fetches them', async () => {
    // CI saw the first half: an unhandled rejection (57P01 on the type query) out of postgres.js, which ends a Node
    // process. The second half: the next session skipped its type fetch, so `${ids}::int[]` went out as "1,2,3" (22P02).
    const cuts = 4;
    const { code, out, err } = await runFixture('pg-typefetch-cut.ts', cuts);
    expect({ code, err: err.slice(0, 2000) }).toEqual({ code: 0, err: '' });
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(cuts + 3);
    // The waiting query rode out every cut session (it had not been sent yet) and every query's array arrived whole.
    for (const l of lines) expect(l, `query ${l.i}`).toEqual({ i: l.i, cut: cuts, r: [1, 2, 3] });
  });
});
