-- A paid order's grant is durable with its paid mark (issue 10): marking an order paid leaves
-- grant_queued_at NULL — the intent to enqueue `order-{order_id}` on `grants` — in the same statement. The
-- callback enqueues right after its commit and stamps grant_queued_at; a relay in every worker process enqueues
-- whatever is still unstamped (Redis was down, the process died in between); reconcile finds a paid order whose
-- grant never got applied and clears the stamp so the relay enqueues it again.
ALTER TABLE orders
  ADD COLUMN paid_recorded_at timestamptz, -- when tally recorded the payment (paid_at is the provider's claim)
  ADD COLUMN grant_queued_at  timestamptz; -- when the grant was handed to BullMQ; NULL on a paid order = pending

-- Orders paid before this migration had their grant enqueued by the callback; reconcile checks they were applied.
UPDATE orders SET paid_recorded_at = coalesce(paid_at, created_at), grant_queued_at = coalesce(paid_at, created_at)
WHERE status = 'paid';

CREATE INDEX orders_grant_pending ON orders (paid_recorded_at) WHERE status = 'paid' AND grant_queued_at IS NULL;

-- An order's creation is a business fact, on the business clock (a paid_at before it is refused).
ALTER TABLE orders ALTER COLUMN created_at SET DEFAULT tally_now();
