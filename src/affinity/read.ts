import type { Db } from '../db/client.ts';
import { progressOf, type Progress } from '../domain/affinity.ts';
import type { AffinitySettings } from './settings.ts';
import { readDevice } from './sql/devices.ts';

export interface AffinityView extends Progress {
  user_id: string;
  device_id: string;
}

/** A device's score and where it stands between levels (levels of the config in force); never seen = 0. */
export async function readAffinity(db: Db, s: AffinitySettings, userId: string, deviceId: string): Promise<AffinityView> {
  const row = await readDevice(db, userId, deviceId);
  return { user_id: userId, device_id: deviceId, ...progressOf(s.levels, row?.value ?? 0) };
}
