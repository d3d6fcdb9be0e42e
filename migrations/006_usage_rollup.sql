-- Usage dashboard rollup: charges net of refunds per user, asset, UTC hour (of occurred_at), source type
-- and model, maintained by every ledger transaction under the account's lock. A window reads whole hours
-- here and only its partial first hour from ledger_entries (ledger_entries_usage), so its cost no longer
-- grows with how much one user has used (measured in docs/money.md).
CREATE TABLE usage_hourly (
  user_id        text NOT NULL,
  asset          text NOT NULL,
  hour           timestamptz NOT NULL,
  source_type    text NOT NULL,
  -- '' when the usage named no model (a key column cannot be null).
  model          text NOT NULL,
  amount         bigint NOT NULL,
  count          bigint NOT NULL,
  input_tokens   bigint NOT NULL,
  output_tokens  bigint NOT NULL,
  PRIMARY KEY (user_id, hour, asset, source_type, model)
);

-- Whatever the ledger already holds.
INSERT INTO usage_hourly (user_id, asset, hour, source_type, model, amount, count, input_tokens, output_tokens)
SELECT user_id, asset, date_trunc('hour', occurred_at, 'UTC'), coalesce(source_type, 'unknown'), coalesce(usage->>'model', ''),
  -sum(amount), count(*) FILTER (WHERE kind = 'consume'),
  coalesce(sum((usage->>'input_tokens')::bigint) FILTER (WHERE kind = 'consume'), 0),
  coalesce(sum((usage->>'output_tokens')::bigint) FILTER (WHERE kind = 'consume'), 0)
FROM ledger_entries
WHERE kind IN ('consume', 'refund') AND occurred_at IS NOT NULL
GROUP BY 1, 2, 3, 4, 5;
