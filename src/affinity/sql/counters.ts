import type { Tx } from '../../db/client.ts';

/** The cooldown clock of one rule on one device. */
export interface RuleStateRow {
  user_id: string;
  device_id: string;
  rule_key: string;
  last_applied_at: Date;
}

export function loadRuleStates(tx: Tx, keys: { userId: string; deviceId: string; ruleKey: string }[]): Promise<RuleStateRow[]> {
  return tx<RuleStateRow[]>`
    SELECT s.user_id, s.device_id, s.rule_key, s.last_applied_at
    FROM affinity_rule_state s
    JOIN unnest(${keys.map((k) => k.userId)}::text[], ${keys.map((k) => k.deviceId)}::text[], ${keys.map((k) => k.ruleKey)}::text[]) AS k(u, d, r)
      ON s.user_id = k.u AND s.device_id = k.d AND s.rule_key = k.r`;
}

export async function upsertRuleStates(tx: Tx, rows: { user_id: string; device_id: string; rule_key: string; last_applied_at: string }[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    INSERT INTO affinity_rule_state (user_id, device_id, rule_key, last_applied_at)
    SELECT user_id, device_id, rule_key, last_applied_at
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb) AS r(user_id text, device_id text, rule_key text, last_applied_at timestamptz)
    ON CONFLICT (user_id, device_id, rule_key) DO UPDATE SET last_applied_at = excluded.last_applied_at`;
}

/** Positive change counted on one natural day; scope is a rule key or '*' for all rules. */
export interface DailyRow {
  user_id: string;
  device_id: string;
  day: string;
  scope: string;
  positive_sum: bigint;
}

export function loadDaily(tx: Tx, keys: { userId: string; deviceId: string; day: string; scope: string }[]): Promise<DailyRow[]> {
  return tx<DailyRow[]>`
    SELECT c.user_id, c.device_id, c.day::text AS day, c.scope, c.positive_sum
    FROM affinity_daily c
    JOIN unnest(${keys.map((k) => k.userId)}::text[], ${keys.map((k) => k.deviceId)}::text[],
                ${keys.map((k) => k.day)}::date[], ${keys.map((k) => k.scope)}::text[]) AS k(u, d, day, s)
      ON c.user_id = k.u AND c.device_id = k.d AND c.day = k.day AND c.scope = k.s`;
}

/** Adds to the day's counters. Callers hold the device lock, so the increments never race. */
export async function addDaily(tx: Tx, rows: { user_id: string; device_id: string; day: string; scope: string; add: string }[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    INSERT INTO affinity_daily (user_id, device_id, day, scope, positive_sum)
    SELECT user_id, device_id, day, scope, add
    FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb) AS r(user_id text, device_id text, day date, scope text, add bigint)
    ON CONFLICT (user_id, device_id, day, scope) DO UPDATE SET positive_sum = affinity_daily.positive_sum + excluded.positive_sum`;
}

/**
 * Applied events of a rule that occurred within a window, per late event (one that occurred before the
 * latest applied event of its rule): only such events can sit near older history.
 */
export function loadAppliedNear(
  tx: Tx,
  windows: { userId: string; deviceId: string; ruleKey: string; from: string; to: string }[],
): Promise<{ user_id: string; device_id: string; rule_key: string; occurred_at: Date }[]> {
  if (windows.length === 0) return Promise.resolve([]);
  return tx`
    SELECT DISTINCT l.user_id, l.device_id, l.rule_key, l.occurred_at
    FROM unnest(${windows.map((w) => w.userId)}::text[], ${windows.map((w) => w.deviceId)}::text[], ${windows.map((w) => w.ruleKey)}::text[],
                ${windows.map((w) => w.from)}::timestamptz[], ${windows.map((w) => w.to)}::timestamptz[]) AS k(u, d, r, f, t)
    JOIN affinity_log l ON l.user_id = k.u AND l.device_id = k.d AND l.rule_key = k.r AND l.kind = 'event'
      AND l.occurred_at > k.f AND l.occurred_at < k.t`;
}
