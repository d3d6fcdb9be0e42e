-- History reads (CONTRACT v2 §4): the balance as of an instant, statements over a time range.
--
-- "As of T" for one account is a position in its entry chain: the last entry (by entry_id, the chain's order)
-- whose created_at is at or before T. This index finds it with one descent: the newest created_at at or before T,
-- then the few entries around it (see src/ledger/sql/history.ts for why "around": a transaction's clock is read
-- when it begins, before it waits for the account's lock, so under contention two neighbouring entries of one
-- account may be dated a few milliseconds out of order). One more index insert per entry; no column in it is ever
-- updated (entries are append-only), so it costs writes nothing else.
CREATE INDEX ledger_entries_account_time ON ledger_entries (account_id, created_at, entry_id);

-- The exact balance at T subtracts batches that had lapsed by T but whose `expire` entry was written later (by
-- the sweep or the account's next transaction): batches of one account by expiry, expired or not. Inserted once
-- per grant; `expires_at` and `account_id` never change, so burns stay HOT updates (migration 008).
CREATE INDEX batches_account_expiry ON batches (account_id, expires_at) WHERE expires_at IS NOT NULL;
