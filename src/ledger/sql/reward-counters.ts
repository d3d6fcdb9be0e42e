import type { Tx } from '../../db/client.ts';

export interface RewardCounterKey {
  user_id: string;
  event_type: string;
  day: string;
}

export interface RewardCounterRow extends RewardCounterKey {
  granted: number;
}

export function loadRewardCounters(tx: Tx, keys: RewardCounterKey[]): Promise<RewardCounterRow[]> {
  if (keys.length === 0) return Promise.resolve([]);
  return tx<RewardCounterRow[]>`
    SELECT c.user_id, c.event_type, to_char(c.day, 'YYYY-MM-DD') AS day, c.granted
    FROM reward_counters c JOIN jsonb_to_recordset(${tx.json(keys as never)}::jsonb) AS k(user_id text, event_type text, day date)
      ON c.user_id = k.user_id AND c.event_type = k.event_type AND c.day = k.day
    WHERE c.user_id = ANY(${[...new Set(keys.map((k) => k.user_id))]}::text[])`;
}

/** Adds this transaction's rewards to the day counters (`granted` = rewards granted that day). */
export async function addRewardCounts(tx: Tx, rows: RewardCounterRow[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    INSERT INTO reward_counters (user_id, event_type, day, granted)
    SELECT user_id, event_type, day, granted
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb) AS r(user_id text, event_type text, day date, granted integer)
    ORDER BY user_id, event_type, day
    ON CONFLICT (user_id, event_type, day) DO UPDATE SET granted = reward_counters.granted + excluded.granted`;
}
