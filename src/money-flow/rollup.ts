import type { Db } from '../db/client.ts';

/**
 * The money-flow rollup (migrations/041_money_flow.sql): ledger transactions append per-asset deltas
 * (src/ledger/sql/money-flow.ts); this folds them into the per-asset totals and reads both back for /metrics.
 */

const COMPACT_BATCH = 100_000;

export interface CompactSummary {
  task: 'money-flow';
  /** Delta rows folded into the totals. */
  compacted: number;
}

/**
 * Moves the deltas into the totals. Each statement deletes the rows it can see and adds exactly them, in one
 * commit, so a reader sees every delta once — as a delta or in a total — and two compactions racing count each
 * row once (the second waits on the first's deleted rows, then finds them gone). In batches, so a backlog after
 * an outage is not one giant statement.
 */
export async function compactMoneyFlow(db: Db): Promise<CompactSummary> {
  let compacted = 0;
  for (;;) {
    const [row] = await db<{ n: number }[]>`
      WITH moved AS (
        DELETE FROM money_flow_deltas
        WHERE ctid = ANY(ARRAY(SELECT ctid FROM money_flow_deltas LIMIT ${COMPACT_BATCH}))
        RETURNING *
      ), summed AS (
        SELECT asset, sum(granted) AS granted, sum(consumed) AS consumed, sum(refunded) AS refunded,
          sum(expired) AS expired, sum(balance) AS balance, sum(debt) AS debt, count(*) AS n
        FROM moved GROUP BY asset
      ), added AS (
        INSERT INTO money_flow_totals AS t (asset, granted, consumed, refunded, expired, balance, debt)
        SELECT asset, granted, consumed, refunded, expired, balance, debt FROM summed ORDER BY asset
        ON CONFLICT (asset) DO UPDATE SET
          granted = t.granted + excluded.granted, consumed = t.consumed + excluded.consumed,
          refunded = t.refunded + excluded.refunded, expired = t.expired + excluded.expired,
          balance = t.balance + excluded.balance, debt = t.debt + excluded.debt
      )
      SELECT coalesce(sum(n), 0)::int AS n FROM summed`;
    compacted += row!.n;
    if (row!.n < COMPACT_BATCH) return { task: 'money-flow', compacted };
  }
}

/** One asset's money flow: all-time counters and current gauges, in the asset's smallest unit. */
export interface MoneyFlow {
  asset: string;
  granted: number;
  consumed: number;
  refunded: number;
  expired: number;
  /** Σ balance of the accounts in credit (what users hold): net balance + debt. */
  outstanding: number;
  debt: number;
  /** Σ active, unexpired holds. */
  held: number;
}

/**
 * The totals plus the deltas not compacted yet (one statement: one snapshot, so a compaction committing
 * meanwhile is seen wholly or not at all), and what active holds reserve. Holds are placed outside the ledger
 * transaction (by the API) and lapse with time alone, so they are summed from the active holds (partial index
 * holds_expiring: only live holds, a small set) rather than rolled up.
 */
export async function readMoneyFlow(db: Db): Promise<MoneyFlow[]> {
  const [flows, holds] = await Promise.all([
    db<{ asset: string; granted: string; consumed: string; refunded: string; expired: string; balance: string; debt: string }[]>`
      SELECT asset, sum(granted)::text AS granted, sum(consumed)::text AS consumed, sum(refunded)::text AS refunded,
        sum(expired)::text AS expired, sum(balance)::text AS balance, sum(debt)::text AS debt
      FROM (
        SELECT asset, granted, consumed, refunded, expired, balance, debt FROM money_flow_totals
        UNION ALL
        SELECT asset, granted, consumed, refunded, expired, balance, debt FROM money_flow_deltas
      ) f
      GROUP BY asset ORDER BY asset`,
    db<{ asset: string; held: string }[]>`
      SELECT asset, sum(amount)::text AS held FROM holds
      WHERE status = 'active' AND expires_at > tally_now() GROUP BY asset`,
  ]);
  const held = new Map(holds.map((h) => [h.asset, Number(h.held)]));
  const out: MoneyFlow[] = flows.map((f) => ({
    asset: f.asset,
    granted: Number(f.granted),
    consumed: Number(f.consumed),
    refunded: Number(f.refunded),
    expired: Number(f.expired),
    outstanding: Number(BigInt(f.balance) + BigInt(f.debt)),
    debt: Number(f.debt),
    held: held.get(f.asset) ?? 0,
  }));
  for (const [asset, h] of held) {
    if (!out.some((f) => f.asset === asset)) out.push({ asset, granted: 0, consumed: 0, refunded: 0, expired: 0, outstanding: 0, debt: 0, held: h });
  }
  return out;
}
