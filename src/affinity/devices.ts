import { ConfigCache } from '../config/store.ts';
import type { Db } from '../db/client.ts';
import { levelFor } from '../domain/affinity.ts';
import { affinitySettingsOf } from './settings.ts';
import { upsertDeviceActive } from './sql/device-active.ts';
import { readDevice } from './sql/devices.ts';

/** What `GET /v1/admin/users/:user_id/devices/:device_id` answers (CONTRACT v2 §4). */
export interface DeviceStatus {
  active: boolean;
  value: number;
  /** The level of `value` under the levels in force (as the affinity read reports it). */
  level: number;
}

// Callers without a cache of their own (the HTTP routes pass ctx.configs) share this one.
const sharedConfigs = new ConfigCache();

async function levelsInForce(db: Db, configs: ConfigCache) {
  return affinitySettingsOf((await configs.get(db)).doc).levels;
}

/**
 * Activates or deactivates a device (`PUT …/devices/:device_id {active}`); idempotent. While inactive, the
 * device's `affinity.event`s answer `noop_device_inactive` and change nothing, admin adjusts still apply, and
 * decay leaves it alone; reactivating restarts its idle period. A device never seen is created (so that it can
 * be deactivated before its first event). Returns the state after the change.
 */
export async function setDeviceActive(db: Db, userId: string, deviceId: string, active: boolean, configs: ConfigCache = sharedConfigs): Promise<DeviceStatus> {
  const levels = await levelsInForce(db, configs);
  const row = await upsertDeviceActive(db, userId, deviceId, active, levelFor(levels, 0));
  return { active: row.active, value: row.value, level: levelFor(levels, row.value) };
}

/** A device's state (`GET …/devices/:device_id`); a device never seen reads active, 0, the level of 0. */
export async function readDeviceState(db: Db, userId: string, deviceId: string, configs: ConfigCache = sharedConfigs): Promise<DeviceStatus> {
  const [levels, row] = await Promise.all([levelsInForce(db, configs), readDevice(db, userId, deviceId)]);
  const value = row?.value ?? 0;
  return { active: row?.active ?? true, value, level: levelFor(levels, value) };
}
