-- Indexes nothing reads, maintained on every ledger write:
-- - a charge's consume entry is found through its decision (processed_events.result->>'transaction_id'),
--   which every charge has anyway, so entries need no index by event_id;
-- - allocations are read by entry (the primary key's prefix); batches are never deleted or renumbered,
--   so the batch_id foreign key needs no index on this side.
DROP INDEX IF EXISTS ledger_entries_event;
DROP INDEX IF EXISTS ledger_allocations_batch;
