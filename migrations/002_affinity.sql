-- The affinity engine: a score per (user, device) moved by rule events, admin adjusts and decay.
-- Every counter lives here, written in the transaction of the score it limits, so none can drift.

CREATE TABLE affinity_devices (
  user_id          text NOT NULL,
  device_id        text NOT NULL,
  value            integer NOT NULL DEFAULT 0 CHECK (value >= 0),
  level            integer NOT NULL DEFAULT 0,
  -- occurred_at of the latest applied rule event or adjust: what decay measures idleness from.
  last_active_at   timestamptz,
  -- The last natural day decay was applied for: each day decays at most once, however often decay runs.
  decayed_through  date,
  version          bigint NOT NULL DEFAULT 0,
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, device_id)
);
CREATE INDEX affinity_devices_idle ON affinity_devices (last_active_at) WHERE value > 0;

-- Cooldowns: when the latest applied event of a rule occurred, per device.
CREATE TABLE affinity_rule_state (
  user_id          text NOT NULL,
  device_id        text NOT NULL,
  rule_key         text NOT NULL,
  last_applied_at  timestamptz NOT NULL,
  PRIMARY KEY (user_id, device_id, rule_key)
);

-- Daily caps: the positive change applied per natural day, per rule (scope = rule_key) and in all (scope = '*',
-- which no rule key can be: keys use [A-Za-z0-9._@-]).
CREATE TABLE affinity_daily (
  user_id       text NOT NULL,
  device_id     text NOT NULL,
  day           date NOT NULL,
  scope         text NOT NULL,
  positive_sum  bigint NOT NULL DEFAULT 0 CHECK (positive_sum >= 0),
  PRIMARY KEY (user_id, device_id, day, scope)
);

-- Every change of a score, append-only: value = Σ change per device, each row after = before + change.
CREATE TABLE affinity_log (
  log_id       bigserial PRIMARY KEY,
  user_id      text NOT NULL,
  device_id    text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('event', 'adjust', 'decay')),
  event_id     text,
  rule_key     text,
  source       text,
  outcome      text NOT NULL,
  change       integer NOT NULL,
  before       integer NOT NULL CHECK (before >= 0),
  after        integer NOT NULL CHECK (after >= 0),
  level_before integer NOT NULL,
  level_after  integer NOT NULL,
  -- The natural day (in the affinity timezone at the time) a rule event's positive change counted towards.
  day          date,
  occurred_at  timestamptz NOT NULL,
  operator_id  text,
  reason       text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT before_plus_change CHECK (after = before + change)
);
CREATE INDEX affinity_log_device ON affinity_log (user_id, device_id, log_id);
CREATE INDEX affinity_log_event ON affinity_log (event_id) WHERE event_id IS NOT NULL;
CREATE TRIGGER affinity_log_append_only BEFORE UPDATE OR DELETE ON affinity_log
  FOR EACH ROW EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER affinity_log_no_truncate BEFORE TRUNCATE ON affinity_log
  FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();

-- Level rewards are granted exactly once ever per (user, device, level): decay and regain never re-grant.
CREATE TABLE affinity_granted_levels (
  user_id     text NOT NULL,
  device_id   text NOT NULL,
  level       integer NOT NULL,
  event_id    text NOT NULL,
  granted_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, device_id, level)
);
CREATE TRIGGER affinity_granted_levels_append_only BEFORE UPDATE OR DELETE ON affinity_granted_levels
  FOR EACH ROW EXECUTE FUNCTION tally_append_only();
