// tally's worker role in its own process, as `tally start --role worker` runs it (same env, same start path,
// src/cli/process.ts), plus the bench's probe (bench/child-probe.ts): RSS, event-loop delay and CPU profiles
// on request over IPC. Started by bench/worker-set.ts with `fork`; stops on SIGTERM/SIGINT like tally does.
import { parseEnv } from '../src/config/env.ts';
import '../src/modules.ts';
import { catchSignals, runUntilSignal, startProcess, withSecrets } from '../src/cli/process.ts';
import { installChildProbe } from './child-probe.ts';

const signal = catchSignals();
const { env } = withSecrets(parseEnv(process.env));
const started = await startProcess(env, new Set(['worker']));
installChildProbe();
process.exit(await runUntilSignal(started, signal));
