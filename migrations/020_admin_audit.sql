-- Who did what from the admin surfaces (Bull Board actions, admin API writes). A row is written before the
-- action runs (no row, no action) and its outcome filled in once the answer went out. Append-only: the only
-- change allowed is that one outcome update.
CREATE TABLE admin_audit (
  audit_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- Wall-clock time on purpose: this records when a person acted, not a business decision.
  at          timestamptz NOT NULL DEFAULT now(),
  -- Which credential: the admin token as a Bearer header or as the HTTP Basic password (a browser).
  credential  text NOT NULL CHECK (credential IN ('bearer', 'basic')),
  ip          text NOT NULL,
  user_agent  text,
  method      text NOT NULL,
  path        text NOT NULL,
  action      text NOT NULL,
  queue       text,
  job_id      text,
  -- The request body (job data an operator added or edited), bounded by the writer.
  request     jsonb,
  status      integer
);
CREATE INDEX admin_audit_at ON admin_audit (at);

CREATE FUNCTION admin_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.status IS NULL AND NEW.status IS NOT NULL
     AND (to_jsonb(NEW) - 'status') = (to_jsonb(OLD) - 'status') THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'table admin_audit is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER admin_audit_guard BEFORE UPDATE OR DELETE ON admin_audit
  FOR EACH ROW EXECUTE FUNCTION admin_audit_guard();
CREATE TRIGGER admin_audit_no_truncate BEFORE TRUNCATE ON admin_audit
  FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();
