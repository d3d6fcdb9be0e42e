import { parseArgs } from 'node:util';
import { ConfigInvalidError } from '../config/document.ts';
import { EnvError, parseEnv } from '../config/env.ts';
import { applyConfig, readConfigFile } from '../config/store.ts';
import { createContext } from '../context.ts';
import { createLogger } from '../log.ts';
import { MAINTENANCE_TASKS } from '../maintenance/tasks.ts';
import '../modules.ts';
import { catchSignals, parseRoles, runMigrations, runUntilSignal, startProcess, withDb, withSecrets } from './process.ts';
import { commands, noArguments, printJson as print, registerCommand, UsageError } from './registry.ts';

const USAGE = `usage:
  tally migrate                              apply migrations/ (creates the database if missing)
  tally start [--role all|api|worker|scheduler[,…]]
  tally config apply FILE                    upsert a config document (YAML or JSON)
  tally maintenance expire|decay|reconcile   run one task now, print its JSON summary
  tally dev                                  migrate, apply the example config, start every role (dev tokens)
  tally demo                                 seed config and run a realistic workload against a running tally
  tally token --user U [--ttl 1h]            print a WebSocket token`;

registerCommand('migrate', async (args, env) => {
  noArguments(args, 'tally migrate');
  print({ task: 'migrate', ...(await runMigrations(env)) });
});

registerCommand('config', async (args, env) => {
  const [sub, file] = args;
  if (sub !== 'apply' || !file || args.length > 2) throw new UsageError('tally config apply FILE');
  let doc: unknown;
  try {
    doc = await readConfigFile(file);
  } catch (err) {
    // A missing file or broken YAML/JSON is the operator's to fix: one line, not a stack trace.
    throw new UsageError(`cannot read config ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  print({ task: 'config apply', file, ...(await withDb(env, (sql) => applyConfig(sql, doc))) });
});

registerCommand('maintenance', async (args, env) => {
  const task = args[0];
  const run = task ? MAINTENANCE_TASKS.get(task) : undefined;
  if (!run || args.length > 1) throw new UsageError(`tally maintenance ${[...MAINTENANCE_TASKS.keys()].join('|')}`);
  const ctx = createContext(env, createLogger(env.LOG_LEVEL));
  try {
    const summary = await run({ sql: ctx.sql, configs: ctx.configs, env });
    print(summary);
    return task === 'reconcile' && (summary as { ok?: boolean }).ok === false ? 3 : 0;
  } finally {
    await ctx.close();
  }
});

registerCommand('start', async (args, rawEnv) => {
  const signal = catchSignals();
  const { values } = parseArgs({ args, options: { role: { type: 'string' } } });
  const { env, generated } = withSecrets(rawEnv);
  if (Object.keys(generated).length > 0) process.stdout.write(`dev secrets (TALLY_DEV=1):\n${Object.entries(generated).map(([k, v]) => `  ${k}=${v}`).join('\n')}\n`);
  const started = await startProcess(env, parseRoles(values.role));
  return runUntilSignal(started, signal);
});

registerCommand('help', async () => {
  process.stdout.write(`${USAGE}\n`);
});

/** node:util parseArgs' refusals (an unknown option, a missing value): the operator's to fix, like a UsageError. */
function isArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...args] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const cmd = commands.get(name);
  if (!cmd) {
    process.stderr.write(`${name ? `unknown command "${name}"\n` : ''}${USAGE}\n`);
    process.exit(name ? 2 : 0);
  }
  try {
    const env = parseEnv();
    const code = await cmd(args, env);
    process.exit(code ?? 0);
  } catch (err) {
    if (err instanceof UsageError || err instanceof EnvError || err instanceof ConfigInvalidError || isArgsError(err)) {
      const message = (err as Error).message;
      process.stderr.write(`tally: ${isArgsError(err) ? message.replace(/\s*\n\s*/g, ' ') : message}\n`);
      process.exit(2);
    }
    process.stderr.write(`tally: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  }
}
