-- Devices an admin deactivated (PUT /v1/admin/users/:u/devices/:d {active}): their rule events answer
-- noop_device_inactive and change nothing; admin adjusts still apply; decay leaves them alone. A device never
-- seen is active. Adding a column with a constant default rewrites nothing (PostgreSQL ≥ 11).
ALTER TABLE affinity_devices ADD COLUMN active boolean NOT NULL DEFAULT true;
