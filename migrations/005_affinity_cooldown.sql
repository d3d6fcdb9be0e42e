-- Cooldowns for late events (occurred before the latest applied one of their rule) look at the applied
-- events of that rule around their occurred_at; this index makes that a range scan.
CREATE INDEX affinity_log_rule_time ON affinity_log (user_id, device_id, rule_key, occurred_at) WHERE kind = 'event';
