import type { ConfigCache } from '../config/store.ts';
import type { Sql } from '../db/client.ts';
import { dbNow } from '../db/clock.ts';
import { addDays, dayKey, decideDecay, levelFor } from '../domain/affinity.ts';
import { insertOutbox, type OutboxRow } from '../ledger/sql/outbox.ts';
import { outboxCommitted } from '../outbox/after-commit.ts';
import { notifications } from './notifications.ts';
import { affinitySettingsOf } from './settings.ts';
import { lockDevices, updateDevices, type DeviceUpdate } from './sql/devices.ts';
import { insertLog, type LogRow } from './sql/log.ts';

export interface DecaySummary {
  task: 'decay';
  /** The current natural day in the affinity timezone (it has not ended, so it is never charged). */
  today: string | null;
  /** The last ended day: idle days up to and including it are charged. */
  through: string | null;
  devices_checked: number;
  devices_decayed: number;
  amount_decayed: number;
  level_downs: number;
  skipped?: string;
}

const CHUNK = 500;

/**
 * Decays idle devices: each ended idle day beyond `after_idle_days` costs `per_day`, once per day ever (the
 * device remembers the day it was decayed through), so a second run the same day changes nothing and missed
 * runs are caught up. The current day is never charged: it has not ended (contract v2 §6). Each chunk of
 * devices is one transaction that locks them like event processing does.
 * `now` is injectable for tests; the scheduler and the CLI use the clock.
 */
export async function runDecay(sql: Sql, configs: ConfigCache, opts: { now?: Date } = {}): Promise<DecaySummary> {
  const { doc } = await configs.get(sql);
  const s = affinitySettingsOf(doc);
  const summary: DecaySummary = { task: 'decay', today: null, through: null, devices_checked: 0, devices_decayed: 0, amount_decayed: 0, level_downs: 0 };
  if (!s.decay || s.decay.perDay === 0) return { ...summary, skipped: 'no decay configured (affinity.settings.decay)' };
  const decay = s.decay;
  const now = opts.now ?? (await dbNow(sql));
  const today = dayKey(now, s.timezone);
  const lastEnded = addDays(today, -1);
  summary.today = today;
  summary.through = lastEnded;
  let after = { u: '', d: '' };
  for (;;) {
    // Candidates by SQL: active, above the floor, its first chargeable idle day (last active day +
    // after_idle_days + 1) has ended, and not yet decayed through the last ended day. decideDecay decides below.
    const due = await sql<{ user_id: string; device_id: string }[]>`
      SELECT user_id, device_id FROM affinity_devices
      WHERE active AND value > ${decay.floor} AND last_active_at IS NOT NULL
        AND (last_active_at AT TIME ZONE ${s.timezone})::date + ${decay.afterIdleDays + 1}::int <= ${lastEnded}::date
        AND (decayed_through IS NULL OR decayed_through < ${lastEnded}::date)
        AND (user_id, device_id) > (${after.u}, ${after.d})
      ORDER BY user_id, device_id LIMIT ${CHUNK}`;
    if (due.length === 0) return summary;
    after = { u: due.at(-1)!.user_id, d: due.at(-1)!.device_id };
    summary.devices_checked += due.length;
    const outboxRows = await sql.begin(async (tx) => {
      const rows = await lockDevices(tx, due.map((r) => ({ userId: r.user_id, deviceId: r.device_id })), levelFor(s.levels, 0));
      const updates: DeviceUpdate[] = [];
      const logs: LogRow[] = [];
      const outbox: OutboxRow[] = [];
      for (const r of rows) {
        // Deactivated since it was picked: a deactivated device does not decay (docs/affinity.md).
        if (!r.last_active_at || !r.active) continue;
        const d = decideDecay({
          value: r.value,
          lastActiveDay: dayKey(r.last_active_at, s.timezone),
          decayedThrough: r.decayed_through,
          today,
          afterIdleDays: decay.afterIdleDays,
          perDay: decay.perDay,
          floor: decay.floor,
        });
        if (d.days === 0) continue;
        const value = r.value + d.change;
        const level = levelFor(s.levels, value);
        updates.push({ user_id: r.user_id, device_id: r.device_id, value, level, last_active_at: r.last_active_at.toISOString(), decayed_through: d.through });
        if (d.change === 0) continue;
        summary.devices_decayed++;
        summary.amount_decayed -= d.change;
        if (level < r.level) summary.level_downs++;
        logs.push({
          user_id: r.user_id,
          device_id: r.device_id,
          kind: 'decay',
          event_id: null,
          rule_key: null,
          source: 'decay',
          outcome: 'applied',
          change: d.change,
          before: r.value,
          after: value,
          level_before: r.level,
          level_after: level,
          day: null,
          occurred_at: now.toISOString(),
          operator_id: null,
          reason: `idle ${d.days} day(s) decayed through ${d.through}`,
        });
        outbox.push(...notifications({ userId: r.user_id, deviceId: r.device_id, value, level }, d.change, r.value, r.level, [], null, 'decay'));
      }
      await Promise.all([updateDevices(tx, updates), insertLog(tx, logs), insertOutbox(tx, outbox)]);
      return outbox.length;
    });
    outboxCommitted(outboxRows as number);
  }
}
