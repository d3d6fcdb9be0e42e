-- Alerts (issue 12, CONTRACT §6 "Alerts and webhooks"; docs/alerts-webhooks.md "Alerts").
--
-- Balance rules (low_balance, overdrawn) are decided inside the ledger transaction that crosses them. Their state
-- lives with the account, written by the same UPDATE, under the same row lock: the keys of the rules that have
-- fired and not yet cleared (`low_balance:<below>`, `overdrawn`). A key is added when its alert is written and
-- removed when the balance is back at or above the threshold (re-armed). Keys of rules no longer configured are
-- dropped at the account's next write. Accounts start with none: an account already below a rule alerts once,
-- at its first ledger transaction under that rule.
ALTER TABLE accounts ADD COLUMN alerts_fired text[] NOT NULL DEFAULT '{}';

-- expiring_soon is decided by the expire maintenance: a batch alerts once, ever. The row is the proof (its
-- primary key makes concurrent sweeps collide instead of both alerting); it is deleted a day after the batch's
-- expiry, when the batch can no longer qualify (it must expire in the future to).
CREATE TABLE expiring_alerts (
  batch_id    bigint PRIMARY KEY REFERENCES batches,
  expires_at  timestamptz NOT NULL,
  alerted_at  timestamptz NOT NULL
);
CREATE INDEX expiring_alerts_expiry ON expiring_alerts (expires_at);
