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

/** A job that can never succeed as sent: fails at once, without retries, and is dead-lettered. */
export class PermanentJobError extends Error {
  constructor(
    readonly code: FailureCode,
    detail: string,
  ) {
    super(`${code}: ${detail}`);
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
  '23505', // unique_violation on processed_events: a concurrent worker applied the same event; a retry sees it
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
