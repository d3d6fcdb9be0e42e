-- Idempotency-Key on POST /v1/orders, /v1/holds, /v1/admin/affinity/adjust, /v1/admin/ledger/adjust (CONTRACT v2 §4).
--
-- A key is claimed before the handler runs (a row `in_progress` with a lease), and the response is stored when it
-- is sent (`done`): the same key + the same request answers the stored response again; a concurrent twin finds
-- the claim and is told 409 idempotency_in_progress. A claim whose owner died (crash between claim and answer)
-- is taken over once its lease has passed, and the request runs again: every one of these routes makes its effect
-- exactly once by an identity derived from the request (event_id, or an id derived from the key), so running
-- again can neither lose nor double it (src/http/idempotency.ts).
CREATE TABLE idempotency_keys (
  -- Whose key: a hash of the credential (never the token) and the route, so two clients' keys never meet.
  scope           text NOT NULL,
  idem_key        text NOT NULL CHECK (length(idem_key) BETWEEN 1 AND 255),
  request_hash    text NOT NULL,
  status          text NOT NULL CHECK (status IN ('in_progress', 'done')),
  -- Which request holds the claim, and until when (a live owner is never overtaken before then).
  owner           text NOT NULL,
  lease_until     timestamptz NOT NULL,
  response_status integer,
  -- The exact bytes of the first response (JSON text), replayed as they were.
  response_body   text,
  created_at      timestamptz NOT NULL DEFAULT tally_now(),
  PRIMARY KEY (scope, idem_key),
  CONSTRAINT done_has_response CHECK (status <> 'done' OR (response_status IS NOT NULL AND response_body IS NOT NULL))
);
-- Pruning by age (the idempotency-keys maintenance task).
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
