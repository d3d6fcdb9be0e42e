import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/tally.ts';

/**
 * tsx runs the code without checking its types, so a type error (a missing import of a type, a changed signature
 * in a file no test loads, bench/ included) would pass every other test. `npm run typecheck`, here in the suite.
 */
describe('the TypeScript sources', () => {
  it('type-check clean (tsc --noEmit over src, test, bench, bin)', () => {
    const run = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', ROOT], { cwd: ROOT, encoding: 'utf8' });
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  }, 180_000);
});
