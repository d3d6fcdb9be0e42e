import type { Tx } from '../../db/client.ts';

export interface GrantedLevelRow {
  user_id: string;
  device_id: string;
  level: number;
  event_id: string;
}

export function loadGrantedLevels(tx: Tx, keys: { userId: string; deviceId: string }[]): Promise<GrantedLevelRow[]> {
  return tx<GrantedLevelRow[]>`
    SELECT g.user_id, g.device_id, g.level, g.event_id
    FROM affinity_granted_levels g
    JOIN unnest(${keys.map((k) => k.userId)}::text[], ${keys.map((k) => k.deviceId)}::text[]) AS k(u, d)
      ON g.user_id = k.u AND g.device_id = k.d`;
}

/** The primary key makes "once ever" a database fact: a second grant of a level cannot commit. */
export async function insertGrantedLevels(tx: Tx, rows: GrantedLevelRow[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    INSERT INTO affinity_granted_levels (user_id, device_id, level, event_id)
    SELECT user_id, device_id, level, event_id
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb) AS r(user_id text, device_id text, level int, event_id text)`;
}
