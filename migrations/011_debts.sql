-- Debt, traced. A post-paid charge the batches cannot cover leaves a debt: the part of that charge no batch paid.
-- Later grants (and refunds) pay debts oldest first, each payment recorded with the batch that made it, so a
-- refund of a charge can give its debt part back where it now lives: lower the debt still unpaid, or return to
-- the batches that paid it, with their expiry (CONTRACT §3, v2). accounts.debt = Σ debts.remaining (reconcile).
CREATE TABLE debts (
  charge_entry_id  bigint PRIMARY KEY REFERENCES ledger_entries,
  account_id       bigint NOT NULL REFERENCES accounts,
  -- The part of the charge that went into debt.
  amount           bigint NOT NULL CHECK (amount > 0),
  -- Still unpaid. Lowered by payments (debt_payments) and by refunds of the charge (`refunded`).
  remaining        bigint NOT NULL CHECK (remaining >= 0),
  refunded         bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0),
  CONSTRAINT debt_within_amount CHECK (remaining + refunded <= amount)
);
-- Open debts of an account, oldest first: the order payments take them in.
CREATE INDEX debts_open ON debts (account_id, charge_entry_id) WHERE remaining > 0;

-- Which batch paid which debt, and in which entry (the grant that brought the batch, or a refund that put
-- points back into it while the account was in debt). Append-only.
CREATE TABLE debt_payments (
  charge_entry_id  bigint NOT NULL REFERENCES debts,
  entry_id         bigint NOT NULL REFERENCES ledger_entries,
  batch_id         bigint NOT NULL REFERENCES batches,
  amount           bigint NOT NULL CHECK (amount > 0),
  PRIMARY KEY (charge_entry_id, entry_id, batch_id)
);
CREATE TRIGGER debt_payments_append_only BEFORE UPDATE OR DELETE ON debt_payments
  FOR EACH ROW EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER debt_payments_no_truncate BEFORE TRUNCATE ON debt_payments
  FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();

-- Backfill from history, replaying every account that was ever in debt. At an entry boundary debt = max(0, −balance)
-- (CHECK debt_means_empty), so each entry's effect on the debt is exact: a rise is a new debt of that entry
-- (a charge), a fall is paid by the batch the entry brought (a grant) or, for a refund of the old kind (which paid
-- debt before anything else), lowers the debts it stands for — the refunded charge's own first, then the oldest.
DO $$
DECLARE
  e record;
  d record;
  before_debt bigint;
  after_debt bigint;
  fall bigint;
  take bigint;
  paying bigint;
  refunded_charge bigint;
BEGIN
  FOR e IN
    SELECT le.entry_id, le.account_id, le.kind, le.balance_before, le.balance_after
    FROM ledger_entries le
    WHERE le.account_id IN (SELECT DISTINCT account_id FROM ledger_entries WHERE balance_after < 0)
    ORDER BY le.account_id, le.entry_id
  LOOP
    before_debt := greatest(0, -e.balance_before);
    after_debt := greatest(0, -e.balance_after);
    IF after_debt > before_debt THEN
      INSERT INTO debts (charge_entry_id, account_id, amount, remaining)
      VALUES (e.entry_id, e.account_id, after_debt - before_debt, after_debt - before_debt);
    ELSIF after_debt < before_debt THEN
      fall := before_debt - after_debt;
      paying := NULL;
      IF e.kind <> 'refund' THEN
        SELECT batch_id INTO paying FROM batches WHERE grant_entry_id = e.entry_id ORDER BY batch_id LIMIT 1;
      END IF;
      SELECT charge_entry_id INTO refunded_charge FROM refunds WHERE entry_id = e.entry_id;
      FOR d IN
        SELECT charge_entry_id, remaining FROM debts
        WHERE account_id = e.account_id AND remaining > 0
        ORDER BY (charge_entry_id = refunded_charge) IS TRUE DESC, charge_entry_id
      LOOP
        EXIT WHEN fall = 0;
        take := least(fall, d.remaining);
        IF paying IS NOT NULL THEN
          UPDATE debts SET remaining = remaining - take WHERE charge_entry_id = d.charge_entry_id;
          INSERT INTO debt_payments (charge_entry_id, entry_id, batch_id, amount) VALUES (d.charge_entry_id, e.entry_id, paying, take);
        ELSE
          UPDATE debts SET remaining = remaining - take, refunded = refunded + take WHERE charge_entry_id = d.charge_entry_id;
        END IF;
        fall := fall - take;
      END LOOP;
    END IF;
  END LOOP;
END $$;
