import postgres from 'postgres';
import type { Sql, Tx } from '../../src/db/client.ts';

/**
 * Counts what a piece of code costs the database: statements (every query postgres.js sends, from its `debug`
 * hook) and round trips (the longest chain of queries each issued only after an earlier one completed —
 * queries pipelined together count once, as they share one trip to the server and back).
 */
export interface Counter {
  /** A pool of one connection whose statements are counted; hand it to the code under test. */
  sql: Sql;
  /** Starts counting afresh; `stop` returns what ran since. */
  start(): void;
  stop(): { statements: string[]; roundTrips: number };
  end(): Promise<void>;
}

export function countingDb(url: string): Counter {
  let statements: string[] | null = null;
  let doneDepth = 0;
  let roundTrips = 0;
  const base = postgres(url, {
    max: 1,
    types: { bigint: postgres.BigInt },
    onnotice: () => {},
    debug: (_conn: number, query: string) => {
      statements?.push(query.replace(/\s+/g, ' ').trim());
    },
  }) as unknown as Sql;

  // Every query made through a transaction handed out by `begin` is timed by depth: one more than the deepest
  // query that had completed when it was issued.
  const track = (tx: Tx): Tx =>
    new Proxy(tx, {
      apply(target, thisArg, args: unknown[]) {
        const q = Reflect.apply(target as never, thisArg, args) as unknown;
        const tagged = Array.isArray(args[0]) && 'raw' in (args[0] as object);
        if (statements && tagged && q && typeof (q as Promise<unknown>).then === 'function') {
          const depth = doneDepth + 1;
          roundTrips = Math.max(roundTrips, depth);
          const done = () => {
            doneDepth = Math.max(doneDepth, depth);
          };
          (q as Promise<unknown>).then(done, done);
        }
        return q;
      },
    });

  const sql = new Proxy(base, {
    get(target, prop, receiver) {
      if (prop === 'begin') {
        return (fn: (tx: Tx) => unknown) => target.begin((tx) => fn(track(tx)) as never);
      }
      return Reflect.get(target, prop, receiver);
    },
  });

  return {
    sql,
    start() {
      statements = [];
      doneDepth = 0;
      roundTrips = 0;
    },
    stop() {
      const out = { statements: statements ?? [], roundTrips };
      statements = null;
      return out;
    },
    end: () => base.end({ timeout: 5 }),
  };
}
