// A baseline worker process for `npm run bench --procs N`: `node --import tsx bench/baseline-worker.ts '<WorkerConfig json>'`.
// Runs until SIGTERM/SIGINT, then closes its worker (in-flight jobs finish) and exits.
import { installChildProbe } from './child-probe.ts';
import { startInProcess, type WorkerConfig } from './worker-set.ts';

const cfg = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
const set = startInProcess(cfg);
const stop = () => {
  void set.close().then(() => process.exit(0), () => process.exit(1));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
installChildProbe();
