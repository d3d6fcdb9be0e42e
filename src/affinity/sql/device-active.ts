import type { Db } from '../../db/client.ts';

export interface DeviceActiveRow {
  active: boolean;
  value: number;
}

/**
 * Sets a device's `active` flag, creating the device (at `initialLevel`) if it was never seen. Reactivating a
 * deactivated device restarts its idle period at tally_now(): the days it spent deactivated are not idle days
 * for decay. The upsert's row lock orders it with the apply transactions (they lock devices FOR UPDATE), so an
 * event is decided either wholly before or wholly after the change. Setting the flag it already has is a no-op.
 */
export async function upsertDeviceActive(db: Db, userId: string, deviceId: string, active: boolean, initialLevel: number): Promise<DeviceActiveRow> {
  const [row] = await db<DeviceActiveRow[]>`
    INSERT INTO affinity_devices AS a (user_id, device_id, level, active)
    VALUES (${userId}, ${deviceId}, ${initialLevel}, ${active})
    ON CONFLICT (user_id, device_id) DO UPDATE SET
      active = excluded.active,
      last_active_at = CASE WHEN excluded.active AND NOT a.active AND a.last_active_at IS NOT NULL
                            THEN greatest(a.last_active_at, tally_now()) ELSE a.last_active_at END,
      version = a.version + (a.active <> excluded.active)::int,
      updated_at = CASE WHEN a.active <> excluded.active THEN now() ELSE a.updated_at END
    RETURNING a.active, a.value`;
  return row!;
}
