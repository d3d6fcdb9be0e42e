-- The credits/points ledger. Money is bigint minor units; the database holds every invariant it can.

CREATE TABLE config_documents (
  version     bigserial PRIMARY KEY,
  doc         jsonb NOT NULL,
  doc_hash    text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts (
  account_id      bigserial PRIMARY KEY,
  user_id         text NOT NULL,
  asset           text NOT NULL,
  -- Σ remaining of unexpired batches − debt, as of the last committed change (expiry is applied lazily
  -- on every touch and by the sweep; reads subtract batches that lapsed since).
  balance         bigint NOT NULL DEFAULT 0,
  debt            bigint NOT NULL DEFAULT 0 CHECK (debt >= 0),
  total_granted   bigint NOT NULL DEFAULT 0 CHECK (total_granted >= 0),
  total_consumed  bigint NOT NULL DEFAULT 0 CHECK (total_consumed >= 0),
  total_expired   bigint NOT NULL DEFAULT 0 CHECK (total_expired >= 0),
  version         bigint NOT NULL DEFAULT 0,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, asset),
  CONSTRAINT balance_is_totals CHECK (balance = total_granted - total_consumed - total_expired),
  -- Debt exists only when nothing is left to burn: then the balance is exactly minus the debt.
  CONSTRAINT debt_means_empty CHECK ((debt = 0 AND balance >= 0) OR (debt > 0 AND balance = -debt))
);

CREATE TABLE batches (
  batch_id        bigserial PRIMARY KEY,
  account_id      bigint NOT NULL REFERENCES accounts,
  amount          bigint NOT NULL CHECK (amount > 0),
  -- What is left to burn. A grant that paid debt starts with less than its amount.
  remaining       bigint NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
  expires_at      timestamptz,
  -- Set once, by the entry that expired the remainder; `remaining` keeps what expired for audits.
  expired         boolean NOT NULL DEFAULT false,
  source          text NOT NULL,
  source_id       text,
  grant_entry_id  bigint NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
);
-- Burn order: soonest expiry first, never-expiring last, then creation.
CREATE INDEX batches_burn_order ON batches (account_id, expires_at ASC NULLS LAST, batch_id)
  WHERE remaining > 0 AND NOT expired;
CREATE INDEX batches_lapsing ON batches (expires_at) WHERE remaining > 0 AND NOT expired AND expires_at IS NOT NULL;

CREATE TABLE ledger_entries (
  entry_id        bigserial PRIMARY KEY,
  account_id      bigint NOT NULL REFERENCES accounts,
  user_id         text NOT NULL,
  asset           text NOT NULL,
  kind            text NOT NULL CHECK (kind IN ('grant', 'consume', 'expire', 'refund', 'adjust')),
  amount          bigint NOT NULL,
  balance_before  bigint NOT NULL,
  balance_after   bigint NOT NULL,
  event_id        text,
  source_type     text,
  source_id       text,
  usage           jsonb,
  description     text,
  occurred_at     timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT before_plus_amount CHECK (balance_after = balance_before + amount),
  CONSTRAINT signed_by_kind CHECK (
    (kind IN ('grant', 'refund') AND amount > 0) OR
    (kind IN ('consume', 'expire') AND amount < 0) OR
    kind = 'adjust')
);
CREATE INDEX ledger_entries_user ON ledger_entries (user_id, entry_id DESC);
CREATE INDEX ledger_entries_user_asset ON ledger_entries (user_id, asset, entry_id DESC);
CREATE INDEX ledger_entries_event ON ledger_entries (event_id) WHERE event_id IS NOT NULL;

-- Every batch a consume burned, and how much of each (refunds and audits need all of it).
CREATE TABLE ledger_allocations (
  entry_id   bigint NOT NULL REFERENCES ledger_entries,
  batch_id   bigint NOT NULL REFERENCES batches,
  amount     bigint NOT NULL CHECK (amount > 0),
  PRIMARY KEY (entry_id, batch_id)
);
CREATE INDEX ledger_allocations_batch ON ledger_allocations (batch_id);

-- The history is append-only: enforced here, not only hoped for in code.
CREATE FUNCTION tally_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'table % is append-only (% refused)', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
  FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER ledger_allocations_append_only BEFORE UPDATE OR DELETE ON ledger_allocations
  FOR EACH ROW EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER ledger_allocations_no_truncate BEFORE TRUNCATE ON ledger_allocations
  FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();

-- Exactly-once, durable: one row per applied (or decided) event, written in the transaction of its effect.
CREATE TABLE processed_events (
  queue         text NOT NULL,
  event_id      text NOT NULL,
  payload_hash  text NOT NULL,
  outcome       text NOT NULL,
  result        jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (queue, event_id)
);

-- Jobs that failed permanently, with their payload and reason, kept until an operator deals with them.
CREATE TABLE dead_letters (
  dead_letter_id  bigserial PRIMARY KEY,
  queue           text NOT NULL,
  job_id          text NOT NULL,
  event_id        text,
  reason_code     text NOT NULL,
  reason          text NOT NULL,
  payload         jsonb,
  failures        integer NOT NULL DEFAULT 1,
  first_failed_at timestamptz NOT NULL DEFAULT now(),
  last_failed_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (queue, job_id)
);
CREATE INDEX dead_letters_recent ON dead_letters (last_failed_at DESC);

-- Transactional outbox: a row per change to push, written with the change, relayed after commit.
CREATE TABLE outbox (
  outbox_id   bigserial PRIMARY KEY,
  user_id     text NOT NULL,
  type        text NOT NULL CHECK (type IN ('balance_changed', 'affinity_update', 'level_up', 'level_down')),
  data        jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  relayed_at  timestamptz
);
CREATE INDEX outbox_unrelayed ON outbox (outbox_id) WHERE relayed_at IS NULL;
