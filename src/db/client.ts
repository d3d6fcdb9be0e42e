import postgres from 'postgres';
import type { Env } from '../config/env.ts';

export type Sql = postgres.Sql<{ bigint: bigint }>;
export type Tx = postgres.TransactionSql<{ bigint: bigint }>;
/** Either the pool or an open transaction: database operations accept both. */
export type Db = Sql | Tx;

/** Server-side timeouts of a connection, in ms (0 = none); see TALLY_DB_*_TIMEOUT_MS in config/env.ts. */
export interface DbTimeouts {
  statementMs: number;
  lockMs: number;
  idleInTransactionMs: number;
}

export interface DbOptions {
  max?: number;
  onnotice?: (n: postgres.Notice) => void;
  /** Set on every connection at its start (none: the server's defaults). */
  timeouts?: DbTimeouts;
  /** pg_stat_activity's application_name (default `tally`). */
  applicationName?: string;
}

/** The timeouts a tally process runs with, from its environment. */
export function dbTimeouts(env: Pick<Env, 'TALLY_DB_STATEMENT_TIMEOUT_MS' | 'TALLY_DB_LOCK_TIMEOUT_MS' | 'TALLY_DB_IDLE_TX_TIMEOUT_MS'>): DbTimeouts {
  return { statementMs: env.TALLY_DB_STATEMENT_TIMEOUT_MS, lockMs: env.TALLY_DB_LOCK_TIMEOUT_MS, idleInTransactionMs: env.TALLY_DB_IDLE_TX_TIMEOUT_MS };
}

/** int8 comes back as bigint: money never passes through a float. */
export function createDb(url: string, opts: DbOptions = {}): Sql {
  const t = opts.timeouts;
  return postgres(url, {
    max: opts.max ?? 10,
    types: { bigint: postgres.BigInt },
    onnotice: opts.onnotice ?? (() => {}),
    connect_timeout: 10,
    idle_timeout: 60,
    // Startup parameters: in force from a connection's first statement, and again after every reconnect.
    connection: {
      application_name: opts.applicationName ?? 'tally',
      ...(t ? { statement_timeout: t.statementMs, lock_timeout: t.lockMs, idle_in_transaction_session_timeout: t.idleInTransactionMs } : {}),
    },
  }) as unknown as Sql;
}
