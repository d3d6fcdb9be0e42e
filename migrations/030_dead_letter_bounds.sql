-- Dead letters keep what a refused job carried, but bounded (issue 10): the workers already store a summary in
-- place of a payload over 64 KB and cut reasons at 1,000 characters; this holds the bound for every writer.
CREATE FUNCTION tally_bound_dead_letter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF length(NEW.reason) > 2000 THEN
    NEW.reason := left(NEW.reason, 1999) || '…';
  END IF;
  IF NEW.payload IS NOT NULL AND octet_length(NEW.payload::text) > 65536 THEN
    NEW.payload := jsonb_build_object('truncated', true, 'problem', 'larger than 65536 bytes of JSON',
      'bytes', octet_length(NEW.payload::text), 'head', left(NEW.payload::text, 2048));
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER dead_letters_bounded BEFORE INSERT OR UPDATE ON dead_letters
  FOR EACH ROW EXECUTE FUNCTION tally_bound_dead_letter();
