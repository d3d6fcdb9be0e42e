import type { Db, Tx } from '../../db/client.ts';

export interface DeviceRow {
  user_id: string;
  device_id: string;
  value: number;
  level: number;
  last_active_at: Date | null;
  decayed_through: string | null;
  /** false once an admin deactivated the device: its rule events change nothing. */
  active: boolean;
}

export interface DeviceKey {
  userId: string;
  deviceId: string;
}

/**
 * Creates missing devices and locks all of them, both ordered by (user_id, device_id) so that concurrent
 * transactions over overlapping devices queue up instead of deadlocking. Devices are always locked before
 * any ledger account (the ledger never locks devices), so the two lock orders cannot form a cycle.
 */
export async function lockDevices(tx: Tx, keys: DeviceKey[], initialLevel: number): Promise<DeviceRow[]> {
  const users = keys.map((k) => k.userId);
  const devices = keys.map((k) => k.deviceId);
  const [, rows] = await Promise.all([
    tx`
    INSERT INTO affinity_devices (user_id, device_id, level)
    SELECT u, d, ${initialLevel}::int FROM unnest(${users}::text[], ${devices}::text[]) AS k(u, d) ORDER BY u, d
    ON CONFLICT (user_id, device_id) DO NOTHING`,
    tx<DeviceRow[]>`
    SELECT a.user_id, a.device_id, a.value, a.level, a.last_active_at, a.decayed_through::text AS decayed_through, a.active
    FROM affinity_devices a JOIN unnest(${users}::text[], ${devices}::text[]) AS k(u, d)
      ON a.user_id = k.u AND a.device_id = k.d
    ORDER BY a.user_id, a.device_id
    FOR UPDATE OF a`,
  ]);
  return rows;
}

export interface DeviceUpdate {
  user_id: string;
  device_id: string;
  value: number;
  level: number;
  last_active_at: string | null;
  decayed_through: string | null;
}

export async function updateDevices(tx: Tx, rows: DeviceUpdate[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    UPDATE affinity_devices a SET value = r.value, level = r.level, last_active_at = r.last_active_at,
      decayed_through = r.decayed_through, version = a.version + 1, updated_at = now()
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
      AS r(user_id text, device_id text, value int, level int, last_active_at timestamptz, decayed_through date)
    WHERE a.user_id = r.user_id AND a.device_id = r.device_id`;
}

export async function readDevice(db: Db, userId: string, deviceId: string): Promise<DeviceRow | undefined> {
  const [row] = await db<DeviceRow[]>`
    SELECT user_id, device_id, value, level, last_active_at, decayed_through::text AS decayed_through, active
    FROM affinity_devices WHERE user_id = ${userId} AND device_id = ${deviceId}`;
  return row;
}
