-- Money-flow metrics (issue 12; docs/observability.md "Money flow"): what was granted, consumed, refunded and
-- expired per asset, and the net balance and debt outstanding — read by /metrics without scanning the ledger.
--
-- Every ledger transaction appends one row per asset it touched to money_flow_deltas (pipelined with its other
-- writes: no round trip, no shared row to wait on — a single per-asset row updated by every transaction would
-- serialise all of them across worker processes). The `money-flow` maintenance task moves the deltas into
-- money_flow_totals with one DELETE … RETURNING: exactly the rows its snapshot sees, each counted once however
-- many compactions race. Readers add the totals and the deltas not yet compacted, in one snapshot.
CREATE TABLE money_flow_deltas (
  asset     text NOT NULL,
  granted   bigint NOT NULL,  -- Σ grant entries
  consumed  bigint NOT NULL,  -- Σ |consume entries| (charges, gross)
  refunded  bigint NOT NULL,  -- Σ refund entries (what refunds gave back)
  expired   bigint NOT NULL,  -- Σ |expire entries|
  balance   bigint NOT NULL,  -- Σ every entry: the change of Σ accounts.balance
  debt      bigint NOT NULL   -- the change of Σ accounts.debt
);
-- No index at all: rows are only appended and then deleted wholesale.
ALTER TABLE money_flow_deltas SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);

-- numeric: all-time sums may outgrow bigint; one row per asset, written only by the compaction.
CREATE TABLE money_flow_totals (
  asset     text PRIMARY KEY,
  granted   numeric NOT NULL DEFAULT 0,
  consumed  numeric NOT NULL DEFAULT 0,
  refunded  numeric NOT NULL DEFAULT 0,
  expired   numeric NOT NULL DEFAULT 0,
  balance   numeric NOT NULL DEFAULT 0,
  debt      numeric NOT NULL DEFAULT 0
);

-- The history written before this migration (one scan, here, rather than one per scrape).
INSERT INTO money_flow_totals (asset, granted, consumed, refunded, expired, balance, debt)
SELECT asset,
  coalesce(sum(amount) FILTER (WHERE kind = 'grant'), 0),
  coalesce(-sum(amount) FILTER (WHERE kind = 'consume'), 0),
  coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0),
  coalesce(-sum(amount) FILTER (WHERE kind = 'expire'), 0),
  coalesce(sum(amount), 0),
  0
FROM ledger_entries GROUP BY asset;
INSERT INTO money_flow_totals (asset, debt)
SELECT asset, sum(debt) FROM accounts GROUP BY asset HAVING sum(debt) > 0
ON CONFLICT (asset) DO UPDATE SET debt = excluded.debt;
