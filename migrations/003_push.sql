-- Live push: what the outbox relay and its pruning need beyond the outbox table of 001.

-- A row's time is when it was written, not when its transaction began: the event's `ts` on the wire and
-- the commit-to-receipt latency the push benchmark reports are measured from it.
ALTER TABLE outbox ALTER COLUMN created_at SET DEFAULT clock_timestamp();

-- Pruning deletes relayed rows past the retention period, oldest first, without scanning unrelayed ones.
CREATE INDEX outbox_relayed ON outbox (relayed_at) WHERE relayed_at IS NOT NULL;
