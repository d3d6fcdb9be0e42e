-- Fewer index writes per ledger event (measured: a 500-row insert into ledger_entries costs ~3× a bare table).
-- (user_id, entry_id DESC) already serves the transactions listing; filtering it by asset is cheaper than
-- maintaining a second index on every insert.
DROP INDEX IF EXISTS ledger_entries_user_asset;

-- Accounts are updated on every event and none of the updated columns is indexed: leave room on each page so
-- those updates stay HOT (no index writes, less bloat).
ALTER TABLE accounts SET (fillfactor = 80);
