import postgres from 'postgres';

export type Sql = postgres.Sql<{ bigint: bigint }>;
export type Tx = postgres.TransactionSql<{ bigint: bigint }>;
/** Either the pool or an open transaction: database operations accept both. */
export type Db = Sql | Tx;

export interface DbOptions {
  max?: number;
  onnotice?: (n: postgres.Notice) => void;
}

/** int8 comes back as bigint: money never passes through a float. */
export function createDb(url: string, opts: DbOptions = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    types: { bigint: postgres.BigInt },
    onnotice: opts.onnotice ?? (() => {}),
    connect_timeout: 10,
    idle_timeout: 60,
    connection: { application_name: 'tally' },
  }) as unknown as Sql;
}
