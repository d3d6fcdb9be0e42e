-- Money: holds (reserve, then settle), refunds, reward counters, orders, and the usage dashboard's index.

-- A hold reserves an amount of an account's balance for work in progress. It is not a ledger movement:
-- available = balance − Σ amount of active holds whose expires_at is still ahead. Every status change is
-- made under the account row's lock, so concurrent holds and guarded charges see one another.
CREATE TABLE holds (
  hold_id          text PRIMARY KEY,
  event_id         text NOT NULL UNIQUE,
  payload_hash     text NOT NULL,
  account_id       bigint NOT NULL REFERENCES accounts,
  user_id          text NOT NULL,
  asset            text NOT NULL,
  source_type      text NOT NULL,
  usage_estimate   jsonb,
  amount           bigint NOT NULL CHECK (amount >= 0),
  -- 'active' until settled by a charge, released by DELETE, or marked expired by the sweep (a hold past
  -- expires_at stops counting at once; the sweep only makes the status say so).
  status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'settled', 'released', 'expired')),
  expires_at       timestamptz NOT NULL,
  settle_event_id  text,
  settled_amount   bigint CHECK (settled_amount >= 0),
  created_at       timestamptz NOT NULL DEFAULT now(),
  closed_at        timestamptz,
  CONSTRAINT settled_has_event CHECK ((status = 'settled') = (settle_event_id IS NOT NULL))
);
CREATE INDEX holds_active ON holds (account_id, expires_at) INCLUDE (amount) WHERE status = 'active';
CREATE INDEX holds_expiring ON holds (expires_at) WHERE status = 'active';

-- One row per applied refund event: what was asked, what came back, and from which part of the charge
-- (`parts`: [{batch_id|null, amount, restored}], batch_id null = the part the charge took as debt), so
-- later refunds of the same charge know exactly what is left per batch.
CREATE TABLE refunds (
  event_id         text PRIMARY KEY,
  charge_entry_id  bigint NOT NULL REFERENCES ledger_entries,
  requested        bigint NOT NULL CHECK (requested > 0),
  restored         bigint NOT NULL CHECK (restored >= 0 AND restored <= requested),
  entry_id         bigint REFERENCES ledger_entries,
  parts            jsonb NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_charge ON refunds (charge_entry_id);
CREATE TRIGGER refunds_append_only BEFORE UPDATE OR DELETE ON refunds
  FOR EACH ROW EXECUTE FUNCTION tally_append_only();

-- Rewards granted per receiver, event type and natural day (in the config's timezone), for daily caps.
CREATE TABLE reward_counters (
  user_id     text NOT NULL,
  event_type  text NOT NULL,
  day         date NOT NULL,
  granted     integer NOT NULL CHECK (granted >= 0),
  PRIMARY KEY (user_id, event_type, day)
);

CREATE TABLE orders (
  order_id      text PRIMARY KEY,
  user_id       text NOT NULL,
  sku           text NOT NULL,
  asset         text NOT NULL,
  amount        bigint NOT NULL CHECK (amount > 0),
  price_cents   bigint NOT NULL CHECK (price_cents >= 0),
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid')),
  provider_ref  text,
  paid_at       timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_user ON orders (user_id, created_at DESC);

-- The price rule in force at a usage's occurred_at: the newest config version applied by then.
CREATE INDEX config_documents_applied ON config_documents (applied_at, version);

-- Usage dashboard: a user's charges and refunds by occurred_at, so a window reads only its own rows.
CREATE INDEX ledger_entries_usage ON ledger_entries (user_id, occurred_at)
  INCLUDE (asset, kind, amount, source_type)
  WHERE kind IN ('consume', 'refund');
