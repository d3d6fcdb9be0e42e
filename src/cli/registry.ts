import type { Env } from '../config/env.ts';

/** A CLI command: returns its exit code (default 0). Output for machines goes to stdout, logs to stderr. */
export type Command = (args: string[], env: Env) => Promise<number | void>;

export const commands = new Map<string, Command>();

export function registerCommand(name: string, cmd: Command): void {
  commands.set(name, cmd);
}

/** Wrong usage: printed as one line, exit code 2. */
export class UsageError extends Error {}

/** A command that takes no arguments refuses any, rather than ignoring a typo. */
export function noArguments(args: string[], usage: string): void {
  if (args.length > 0) throw new UsageError(`${usage} takes no arguments (got ${args.map((a) => JSON.stringify(a)).join(' ')})`);
}

export function printJson(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj, null, 2)}\n`);
}
