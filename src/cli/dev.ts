import { join } from 'node:path';
import { applyConfig, readConfigFile } from '../config/store.ts';
import { MIGRATIONS_DIR } from '../db/migrate.ts';
import { catchSignals, runMigrations, runUntilSignal, startProcess, withDb, withSecrets } from './process.ts';
import { noArguments, registerCommand } from './registry.ts';

export const EXAMPLE_CONFIG = join(MIGRATIONS_DIR, '..', 'examples', 'tally.config.yaml');

/** Info lines `tally dev` prints once every role is up (modules add theirs: Bull Board, a WebSocket token…). */
export type DevInfo = (ctx: { port: number; env: ReturnType<typeof withSecrets>['env'] }) => string[];
const devInfo: DevInfo[] = [];
export function addDevInfo(info: DevInfo): void {
  devInfo.push(info);
}

/** The newcomer's one command: database migrated, example config applied, every role up with dev tokens. */
registerCommand('dev', async (args, rawEnv) => {
  noArguments(args, 'tally dev');
  const signal = catchSignals();
  // Logs for a person at a terminal (pino-pretty) unless TALLY_LOG_FORMAT says otherwise; `tally start` stays JSON.
  const { env } = withSecrets({ ...rawEnv, TALLY_DEV: true, TALLY_LOG_FORMAT: rawEnv.TALLY_LOG_FORMAT ?? 'pretty' });
  const migrated = await runMigrations(env);
  const applied = await withDb(env, async (sql) => applyConfig(sql, await readConfigFile(EXAMPLE_CONFIG)));
  const started = await startProcess(env, new Set(['api', 'worker', 'scheduler']));
  const port = started.port ?? env.PORT;
  const base = `http://127.0.0.1:${port}`;
  const lines = [
    '',
    'tally is running (all roles in this process; Ctrl-C stops it gracefully)',
    `  database     ${env.DATABASE_URL} (migrations: ${migrated.applied.length} applied now, at ${migrated.current})`,
    `  config       ${EXAMPLE_CONFIG} (version ${applied.version})`,
    `  API          ${base}   Authorization: Bearer ${env.TALLY_API_TOKEN}`,
    `  admin token  ${env.TALLY_ADMIN_TOKEN}`,
    `  health       curl ${base}/healthz`,
    `  a balance    curl -H 'Authorization: Bearer ${env.TALLY_API_TOKEN}' ${base}/v1/users/alice/balances/points`,
    ...devInfo.flatMap((f) => f({ port, env })),
    `  try          in another shell: TALLY_API_TOKEN=${env.TALLY_API_TOKEN} PORT=${port} npx tally demo`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return runUntilSignal(started, signal);
});
