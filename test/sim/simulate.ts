/**
 * fast-check around the runner: a property "tally agrees with the model on every generated sequence",
 * checked one seed at a time so every run is replayable by its seed (and, once shrunk, by seed + path).
 * A failure is shrunk (unless told not to) to a short sequence and its operations are written to a file.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { opsArb, type Feature, type Op } from './ops.ts';
import { Divergence, SlowStep, emptyStats, runOps, type RunStats } from './runner.ts';
import type { TallySystem } from './system.ts';

export interface SeedOptions {
  seed: number;
  /** fast-check's path of a shrunk counterexample (printed with a failure): replays exactly that one. */
  path?: string;
  maxOps: number;
  exclude: ReadonlySet<Feature>;
  /** Shrink a failure (each try is a run against tally), for at most this long; 0 = report the first failure as is. */
  shrinkMs: number;
  echo?: (line: string) => void;
}

export interface SeedResult {
  seed: number;
  stats: RunStats;
  /** Runs fast-check made (1, plus shrink attempts). */
  runs: number;
  slowSteps: number;
  /** `divergence`: tally and the model disagree (false: the run broke some other way). */
  failure?: { message: string; path: string; ops: Op[]; file: string; shrinks: number; divergence: boolean };
}

export const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts', 'sim');

/** Checks one seed (one generated sequence; with a failure, the shrunk sequences tried after it). */
export async function checkSeed(sys: TallySystem, o: SeedOptions): Promise<SeedResult> {
  const stats = emptyStats();
  let runs = 0;
  let slowSteps = 0;
  let first = true;
  // fast-check's time limit on shrinking races the run in progress and stops waiting for it — it does not stop it.
  // That run must end before the next seed starts: it would go on driving the shared clock (back to its own
  // instants) under the next seed's jobs. Each run is kept here and awaited after the check.
  let inFlight: Promise<unknown> = Promise.resolve();
  const property = fc.asyncProperty(opsArb(o.maxOps), async (ops) => {
    runs++;
    try {
      const run = runOps(sys, ops, { exclude: o.exclude, echo: first ? o.echo : undefined }, first ? stats : emptyStats());
      inFlight = run.catch(() => undefined);
      await run;
    } catch (err) {
      if (err instanceof SlowStep) {
        slowSteps++;
        return; // the time model could not be kept (an overloaded machine): inconclusive, not a divergence
      }
      throw err;
    } finally {
      first = false;
    }
  });
  const details = await fc.check(property, {
    seed: o.seed,
    path: o.path,
    numRuns: 1,
    endOnFailure: o.shrinkMs === 0,
    plugins: o.shrinkMs > 0 ? [fc.interruptAfterTimeLimit(o.shrinkMs)] : [],
  } as fc.Parameters<[Op[]]>);
  await inFlight;
  const result: SeedResult = { seed: o.seed, stats, runs, slowSteps };
  if (details.failed && details.counterexample) {
    const ops = details.counterexample[0];
    const error = details.errorInstance;
    const message = error instanceof Divergence ? error.message : String((error as Error)?.stack ?? error);
    mkdirSync(ARTIFACTS, { recursive: true });
    const file = join(ARTIFACTS, `seed-${o.seed}.json`);
    writeFileSync(file, JSON.stringify({ seed: o.seed, path: details.counterexamplePath, exclude: [...o.exclude], ops }, null, 1));
    result.failure = { message, path: details.counterexamplePath ?? '', ops, file, shrinks: details.numShrinks, divergence: error instanceof Divergence };
  }
  return result;
}

/** Runs a sequence saved by a failure as it is (no generation, no shrinking). */
export async function replayFile(sys: TallySystem, ops: Op[], exclude: ReadonlySet<Feature>, echo?: (line: string) => void): Promise<RunStats> {
  return runOps(sys, ops, { exclude, echo });
}
