-- The clock of every business decision tally makes in SQL: expiry, holds, reads, the sweep, config versions.
-- tally_now() is now() plus an offset that is always 0 in production. Tests (and the simulation) move it to
-- cross expiries and day boundaries without sleeping; a non-zero offset is refused unless the database itself
-- was marked as a test database (`ALTER DATABASE … SET tally.drivable_clock = on`, done only by test set-up),
-- so it cannot be switched on in production by accident.
CREATE TABLE tally_clock (
  only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  offset_ms  bigint NOT NULL DEFAULT 0
);
INSERT INTO tally_clock DEFAULT VALUES;

CREATE FUNCTION tally_clock_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.offset_ms <> 0 AND coalesce(current_setting('tally.drivable_clock', true), '') <> 'on' THEN
    RAISE EXCEPTION 'the drivable clock is for test databases only (this database does not set tally.drivable_clock = on)'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER tally_clock_guard BEFORE INSERT OR UPDATE ON tally_clock
  FOR EACH ROW EXECUTE FUNCTION tally_clock_guard();
CREATE TRIGGER tally_clock_no_delete BEFORE DELETE OR TRUNCATE ON tally_clock
  FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();

-- Inlined by the planner: one InitPlan per statement, also where it is a column default.
CREATE FUNCTION tally_now() RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT now() + coalesce((SELECT offset_ms FROM tally_clock), 0) * interval '1 millisecond'
$$;

ALTER TABLE config_documents ALTER COLUMN applied_at SET DEFAULT tally_now();
ALTER TABLE ledger_entries ALTER COLUMN created_at SET DEFAULT tally_now();
ALTER TABLE batches ALTER COLUMN created_at SET DEFAULT tally_now();
ALTER TABLE holds ALTER COLUMN created_at SET DEFAULT tally_now();
ALTER TABLE orders ALTER COLUMN created_at SET DEFAULT tally_now();
ALTER TABLE processed_events ALTER COLUMN created_at SET DEFAULT tally_now();
ALTER TABLE refunds ALTER COLUMN created_at SET DEFAULT tally_now();
ALTER TABLE affinity_log ALTER COLUMN created_at SET DEFAULT tally_now();
ALTER TABLE affinity_granted_levels ALTER COLUMN granted_at SET DEFAULT tally_now();
