-- The committed, ordered outbox feed (docs/push.md "The feed"): what WebSocket resume (CONTRACT §5 v2) and every
-- other outbox consumer (webhooks) read.
--
-- outbox_id comes from a sequence and is drawn while the writing transaction runs, so under parallel
-- transactions a smaller outbox_id can commit after a larger one: a reader that remembered "I saw 42" and later
-- asked for "> 42" would skip the late one. `seq` is the delivery order instead. The relay assigns it, in one
-- transaction at a time, to the rows its statement can see — rows whose transactions have committed — so a seq,
-- once visible to anyone, is final, and every seq assigned later is larger. Readers of `seq > N` therefore
-- never miss a row that commits late: it simply gets a seq after N when it becomes visible.
ALTER TABLE outbox ADD COLUMN seq bigint;

-- Issue 12: alerts travel the same outbox as the other pushed messages.
ALTER TABLE outbox DROP CONSTRAINT outbox_type_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_type_check
  CHECK (type IN ('balance_changed', 'affinity_update', 'level_up', 'level_down', 'alert'));

-- The relay's marks, one row each so they lock independently (sequencing, publishing and pruning never wait on
-- one another):
--   sequenced  highest seq assigned (rows 1..sequenced exist unless pruned; no gaps: the counter lives here
--              and rolls back with its transaction)
--   published  highest seq published on the Redis fan-out channels (relayed_at is set up to it)
--   pruned     every row with seq <= pruned has been deleted (a resume from before it cannot be complete)
CREATE TABLE outbox_feed (
  mark  text PRIMARY KEY CHECK (mark IN ('sequenced', 'published', 'pruned')),
  seq   bigint NOT NULL CHECK (seq >= 0)
);

-- Rows relayed before this migration keep their old id as seq, so their `ob-N` ids stay what clients saw; the
-- feed starts above every id ever drawn. Those old ids were not commit-ordered, so a resume from one of them
-- answers resync (pruned = the start), except from the very start itself.
UPDATE outbox SET seq = outbox_id WHERE relayed_at IS NOT NULL;
INSERT INTO outbox_feed (mark, seq)
SELECT m, greatest(
  coalesce((SELECT max(outbox_id) FROM outbox), 0),
  (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM outbox_outbox_id_seq))
FROM unnest(ARRAY['sequenced', 'published', 'pruned']) AS m;

CREATE UNIQUE INDEX outbox_seq ON outbox (seq) WHERE seq IS NOT NULL;          -- the feed, publishing, pruning
CREATE INDEX outbox_user_seq ON outbox (user_id, seq) WHERE seq IS NOT NULL;   -- a user's resume
CREATE INDEX outbox_unsequenced ON outbox (outbox_id) WHERE seq IS NULL;       -- the relay's next batch

-- Consumers of the feed other than live push (the webhook dispatcher, …) register their position here;
-- outbox-prune never deletes a row a registered consumer has not passed. Drop a retired consumer's row, or it
-- holds the outbox for ever (the prune summary names the consumers that hold it back).
CREATE TABLE outbox_cursors (
  consumer    text PRIMARY KEY CHECK (consumer ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  position    bigint NOT NULL CHECK (position >= 0),
  updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
