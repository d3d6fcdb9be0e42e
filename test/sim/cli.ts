/**
 * The long simulation: `npm run sim -- --ops 100000 [--seed N] [--procs 2] [--exclude known] [--keep-going]`.
 * Checks seed after seed (each one generated sequence of up to --max-ops operations, against one tally with
 * its own database) until --ops operations ran; prints each seed's outcome and a summary. A divergence is
 * shrunk (for up to --shrink-minutes), printed with the exact command that replays it, and saved under
 * test-artifacts/sim/. `--replay FILE` runs a saved sequence again as it is.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FEATURES, type Feature } from './ops.ts';
import { Divergence } from './runner.ts';
import { checkSeed, replayFile } from './simulate.ts';
import { TallySystem } from './system.ts';

const { values } = parseArgs({
  options: {
    ops: { type: 'string', default: '2000' },
    seed: { type: 'string' },
    path: { type: 'string' },
    procs: { type: 'string', default: '1' },
    'max-ops': { type: 'string', default: '1500' },
    exclude: { type: 'string', default: '' },
    'shrink-minutes': { type: 'string', default: '10' },
    'keep-going': { type: 'boolean', default: false },
    replay: { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});

function features(list: string): Set<Feature> {
  const out = new Set<Feature>();
  for (const f of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (f === 'known') FEATURES.forEach((x) => out.add(x));
    else if ((FEATURES as readonly string[]).includes(f)) out.add(f as Feature);
    else throw new Error(`unknown feature "${f}" (known: ${FEATURES.join(', ')}, or "known" for all)`);
  }
  return out;
}

const budget = Number(values.ops);
const procs = values.procs === '2' ? 2 : 1;
const exclude = features(values.exclude!);
const echo = values.verbose ? (line: string) => console.log(line) : undefined;
const flags = `--procs ${procs}${exclude.size ? ` --exclude ${[...exclude].join(',')}` : ''} --max-ops ${values['max-ops']}`;

const sys = await TallySystem.start({ procs });
let interrupted = false;
process.once('SIGINT', () => {
  interrupted = true; // the seed in progress finishes; then the summary, and tally stops
  console.log('\ninterrupted: stopping after this seed');
});
const started = Date.now();
let exitCode = 0;
try {
  if (values.replay) {
    const saved = JSON.parse(readFileSync(values.replay, 'utf8'));
    if (saved.note) console.log(saved.note);
    try {
      const stats = await replayFile(sys, saved.ops, new Set(saved.exclude ?? []), echo);
      console.log(`replayed ${values.replay}: no divergence (${stats.ops} operations, ${stats.jobs} jobs)`);
    } catch (err) {
      if (!(err instanceof Divergence)) throw err;
      exitCode = 1;
      console.log(err.message);
    }
  } else {
    let seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
    let ops = 0;
    let seeds = 0;
    const failures: { seed: number; path: string; first: string; shrunkTo: number }[] = [];
    let slow = 0;
    while (ops < budget && !interrupted) {
      const t0 = Date.now();
      const r = await checkSeed(sys, {
        seed, path: values.path, maxOps: Number(values['max-ops']), exclude, shrinkMs: Number(values['shrink-minutes']) * 60_000, echo,
      });
      seeds++;
      ops += r.stats.ops;
      slow += r.slowSteps;
      const took = ((Date.now() - t0) / 1000).toFixed(0);
      if (!r.failure) {
        console.log(`seed ${seed}: ${r.stats.ops} ops, ${r.stats.jobs} jobs in ${r.stats.waves} waves, ${r.stats.checks} checks — agrees with the model (${took} s)`);
      } else {
        exitCode = 1;
        const f = r.failure;
        failures.push({ seed, path: f.path, first: f.message.split('\n')[0]!, shrunkTo: f.ops.length });
        console.log(`seed ${seed}: ${f.message}\n`);
        console.log(`seed ${seed}: shrunk to ${f.ops.length} operations in ${f.shrinks} shrinks (${r.runs} runs, ${took} s); saved to ${f.file}`);
        console.log(`  replay: npm run sim -- --seed ${seed} --path "${f.path}" ${flags}`);
        console.log(`  or:     npm run sim -- --replay ${f.file} --procs ${procs}\n`);
        // Keep going past divergences only: anything else (tally unreachable, a bug here) ends the run.
        if (!values['keep-going'] || !f.divergence) break;
      }
      if (values.path) break;
      seed = (seed + 1) % 2 ** 31;
    }
    const secs = ((Date.now() - started) / 1000).toFixed(0);
    console.log(`\nsummary: ${ops} operations over ${seeds} seed(s), procs ${procs}, exclude [${[...exclude].join(',')}], ${failures.length} divergence(s), ${slow} inconclusive slow step(s), ${sys.sdkStaleResults} stale TallyProducer.result() answer(s), ${secs} s`);
    for (const f of failures) console.log(`  seed ${f.seed} (path ${f.path}, ${f.shrunkTo} ops): ${f.first}`);
    for (const s of sys.sdkStaleSamples) console.log(`  stale result(): ${s}`);
  }
} catch (err) {
  exitCode = 2;
  console.error(err);
} finally {
  await sys.stop();
}
process.exit(exitCode);
