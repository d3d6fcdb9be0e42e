import { pino, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export type LogFormat = 'json' | 'pretty';

/**
 * Never let credentials reach a log line, wherever a caller puts them: tokens, secrets (webhook secrets sit in
 * the config document), signatures and authorization headers, one or two levels deep.
 */
export const REDACT_PATHS = [
  '*.token', '*.authorization', '*.password', '*.secret', '*.signature',
  '*.*.token', '*.*.secret', '*.*.password',
  'headers.authorization', 'headers.cookie', 'headers["x-tally-signature"]',
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-tally-signature"]',
  'webhooks[*].secret', 'doc.webhooks[*].secret', 'document.webhooks[*].secret',
];

/**
 * Logs go to stderr so that command output on stdout stays machine-readable JSON. `json` (production, `tally
 * start`) is one object per line for a log pipeline; `pretty` (`tally dev`) is pino-pretty's coloured lines for
 * a person at a terminal, formatted in-process (no worker thread, so nothing is lost on exit).
 */
export function createLogger(level: string, name = 'tally', format: LogFormat = 'json', destination?: DestinationStream): Logger {
  const options = { name, level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  if (format === 'pretty') {
    return pino(options, pretty({ destination: destination ?? 2, colorize: !destination && process.stderr.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true, sync: true }));
  }
  return pino(options, destination ?? pino.destination({ fd: 2, sync: false }));
}
