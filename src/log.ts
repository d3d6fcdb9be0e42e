import { pino, type Logger } from 'pino';

export type { Logger };

/** Logs go to stderr so that command output on stdout stays machine-readable JSON. */
export function createLogger(level: string, name = 'tally'): Logger {
  return pino(
    {
      name,
      level,
      // Never let credentials reach a log line, wherever a caller puts them.
      redact: { paths: ['*.token', '*.authorization', '*.password', '*.secret', 'headers.authorization'], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
