import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './tally.ts';

/**
 * Prometheus' promtool, installed by scripts/ensure-promtool.sh (Debian's `prometheus` package) when missing
 * and we are root. Elsewhere the tests that need it are skipped with a warning, as the browser test does.
 */
function find(): string | null {
  const which = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  return which.status === 0 ? which.stdout.trim() : null;
}

export function ensurePromtool(who: string): string | null {
  let path = find();
  if (!path && process.getuid?.() === 0) {
    try {
      execFileSync('bash', [join(ROOT, 'scripts', 'ensure-promtool.sh')], { stdio: 'inherit', timeout: 480_000 });
    } catch {
      // reported below
    }
    path = find();
  }
  if (!path) console.warn(`${who}: SKIPPED — promtool is missing (apt-get install prometheus, or run scripts/ensure-promtool.sh as root)`);
  return path;
}

/** Runs promtool; resolves with its exit code and output instead of throwing. */
export function promtool(path: string, args: string[], input?: string): { code: number; out: string } {
  const r = spawnSync(path, args, { input, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}
