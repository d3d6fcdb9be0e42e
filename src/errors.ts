/**
 * Typed errors with stable codes. The mapping from an error to BullMQ behaviour (fail now, retry later)
 * lives in `workers/job-outcome.ts`; the mapping to HTTP status in `http/errors.ts`.
 */
export type FailureCode =
  | 'invalid_payload'
  | 'unsupported_version'
  | 'idempotency_conflict'
  | 'refund_exceeds_charge'
  | 'unknown_hold'
  | 'unknown_charge';

/** Longest detail a failure reason carries (BullMQ's failedReason, dead_letters.reason, logs). */
export const MAX_REASON_DETAIL = 1000;

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Text that is safe to store and log whatever it quotes (a hostile key name, a database message): control
 * characters written as `\uXXXX`, lone surrogates replaced, and at most `max` characters. PostgreSQL refuses a
 * NUL in text and a lone surrogate in jsonb, so an unbounded or raw reason could make its own dead letter fail.
 */
export function printable(text: string, max = MAX_REASON_DETAIL): string {
  let s = text.replace(CONTROL_CHARS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).replace(LONE_SURROGATE, '\ufffd');
  if (s.length > max) {
    s = s.slice(0, max - 1);
    if (/[\ud800-\udbff]$/.test(s)) s = s.slice(0, -1); // never cut a surrogate pair in half
    s += '…';
  }
  return s;
}

/** A job that can never succeed as sent: fails at once, without retries, and is dead-lettered. */
export class PermanentJobError extends Error {
  constructor(
    readonly code: FailureCode,
    detail: string,
  ) {
    super(`${code}: ${printable(detail)}`);
    this.name = 'PermanentJobError';
  }
}

export function invalidPayload(detail: string): PermanentJobError {
  return new PermanentJobError('invalid_payload', detail);
}

/** Bad HTTP input or a refused request; `status` is the HTTP status it maps to. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Raised to callers waiting on a batch when the process shuts down before their event committed. */
export class ShutdownError extends Error {
  constructor() {
    super('worker is shutting down; event not applied, it will be retried');
    this.name = 'ShutdownError';
  }
}

/** SQLSTATE of a unique violation. */
export const UNIQUE_VIOLATION = '23505';
/** How often a run that hits a unique violation is retried before the violation is blamed on its events. */
export const UNIQUE_VIOLATION_RETRIES = 5;

const TRANSIENT_PG_CODES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '53400', // configuration_limit_exceeded
  '08000', '08001', '08003', '08004', '08006', '08007', '08P01',
  '57014', // query_canceled: statement_timeout (an overloaded database) or pg_cancel_backend
  '25P03', // idle_in_transaction_session_timeout ended the session
  // unique_violation on processed_events: a concurrent worker applied the same event; a retry sees it. Retried a
  // bounded number of times only (UNIQUE_VIOLATION_RETRIES): one that persists belongs to the event.
  UNIQUE_VIOLATION,
]);
const TRANSIENT_NODE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH',
  'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT',
]);

/** Faults that pass: retried by tally itself with backoff, never consuming a job's attempts. */
export function isTransient(err: unknown): boolean {
  if (err instanceof ShutdownError) return true;
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (TRANSIENT_PG_CODES.has(code) || TRANSIENT_NODE_CODES.has(code))) return true;
  const errors = (err as { errors?: unknown }).errors; // AggregateError from a failed dual-stack connect
  return Array.isArray(errors) && errors.some(isTransient);
}

/** The SQLSTATE (or Node error code) of an error, if it has one. */
export function errorCode(err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/**
 * A value of this event the database cannot hold: SQLSTATE class 22 (data exception: a number out of range, a NUL
 * byte, an invalid escape or date) or 54 (program limit exceeded: too deep, too large). Such an error belongs to
 * the one event that carried the value, never to its batch-mates.
 */
export function isDataError(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && /^(22|54)[0-9A-Z]{3}$/.test(code);
}

/** A fault that was transient by kind but kept recurring past its bound: it is now blamed on the run's events. */
export class RetriesExhaustedError extends Error {
  constructor(
    readonly fault: unknown,
    readonly attempts: number,
  ) {
    super(`${(fault as Error)?.message ?? String(fault)} (still failing after ${attempts} attempts)`);
    this.name = 'RetriesExhaustedError';
  }
}

/**
 * What an event that failed *alone* with this error gets: a PermanentJobError for errors that belong to the event
 * (a data error; a unique violation that persisted past its retries), or null for anything else (a bug: it keeps
 * its ordinary failure and the job's attempts).
 */
export function blameOnEvent(err: unknown): PermanentJobError | null {
  if (err instanceof PermanentJobError) return err;
  if (isDataError(err)) {
    return invalidPayload(`the database cannot store a value of this event (SQLSTATE ${errorCode(err)}: ${(err as Error).message})`);
  }
  if (err instanceof RetriesExhaustedError && errorCode(err.fault) === UNIQUE_VIOLATION) {
    const constraint = (err.fault as { constraint_name?: string }).constraint_name ?? 'unknown';
    return new PermanentJobError(
      'idempotency_conflict',
      `unique constraint ${constraint} kept refusing this event after ${err.attempts} attempts: ${(err.fault as Error).message}`,
    );
  }
  return null;
}
