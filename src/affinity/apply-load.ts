import type { Tx } from '../db/client.ts';
import { levelFor } from '../domain/affinity.ts';
import { findProcessed } from '../ledger/sql/processed-events.ts';
import type { AffinityEventCommand } from './commands.ts';
import { GLOBAL_SCOPE, dailyKey, deviceKey, eventKey, levelKey, ruleStateKey, unique, type ApplyState } from './apply-state.ts';
import { loadAppliedNear, loadDaily, loadRuleStates } from './sql/counters.ts';
import { lockDevices } from './sql/devices.ts';
import { loadGrantedLevels } from './sql/granted-levels.ts';

/**
 * Locks the batch's devices (sorted, creating missing ones), then — in one round trip — reads the decisions
 * already taken for its event ids, the cooldown clocks, the day's counters and the levels already rewarded;
 * a late event (one older than its rule's latest) adds one more round trip for the applied events around it.
 * The decision lookup comes after the lock, so it sees whatever a concurrent holder of these devices committed.
 */
export async function lockAndLoad(tx: Tx, st: ApplyState): Promise<void> {
  const { cmds, settings } = st;
  // A command with bad input fails alone and touches no row, not even its device's.
  const live = cmds.filter((_, i) => st.futures[i] === null);
  const deviceKeys = unique(live.map((c) => ({ userId: c.userId, deviceId: c.deviceId })), (k) => deviceKey(k.userId, k.deviceId));
  const deviceRows = await lockDevices(tx, deviceKeys, levelFor(settings.levels, 0));
  const events = cmds.flatMap((c) => (c.op === 'event' ? [c] : []));
  // A hot device sends the same keys many times per batch: ask for each once.
  const dailyKeys = unique(
    cmds.flatMap((c, i) =>
      c.op === 'event' ? [GLOBAL_SCOPE, c.ruleKey].map((scope) => ({ userId: c.userId, deviceId: c.deviceId, day: st.days[i]!, scope })) : [],
    ),
    (k) => dailyKey(k.userId, k.deviceId, k.day, k.scope),
  );
  const ruleKeys = unique(
    events.map((e) => ({ userId: e.userId, deviceId: e.deviceId, ruleKey: e.ruleKey })),
    (k) => ruleStateKey(k.userId, k.deviceId, k.ruleKey),
  );
  const [processed, ruleRows, dailyRows, grantedRows] = await Promise.all([
    findProcessed(tx, cmds.map((c) => c.queue), cmds.map((c) => c.eventId)),
    loadRuleStates(tx, ruleKeys),
    loadDaily(tx, dailyKeys),
    loadGrantedLevels(tx, deviceKeys),
  ]);

  for (const r of deviceRows) {
    st.devices.set(deviceKey(r.user_id, r.device_id), {
      userId: r.user_id,
      deviceId: r.device_id,
      value: r.value,
      level: r.level,
      lastActiveAt: r.last_active_at ? r.last_active_at.getTime() : null,
      decayedThrough: r.decayed_through,
      active: r.active,
      changed: false,
    });
  }
  for (const p of processed) st.decided.set(eventKey(p.queue, p.event_id), p);
  for (const r of ruleRows) st.lastApplied.set(ruleStateKey(r.user_id, r.device_id, r.rule_key), r.last_applied_at.getTime());
  for (const r of dailyRows) st.daily.set(dailyKey(r.user_id, r.device_id, r.day, r.scope), Number(r.positive_sum));
  for (const g of grantedRows) st.rewardedLevels.add(levelKey(g.user_id, g.device_id, g.level));
  await loadCooldownHistory(tx, st, events);
}

/**
 * Per (device, rule): the applied times a cooldown check must look at — the latest applied event and, for late
 * events (occurred a cooldown or more before it), the applied events logged around them. In-order traffic has
 * no late events and costs no query.
 */
async function loadCooldownHistory(tx: Tx, st: ApplyState, events: AffinityEventCommand[]): Promise<void> {
  for (const [key, t] of st.lastApplied) st.appliedNear.set(key, [t]);
  const windows = events.flatMap((e) => {
    const cd = (st.settings.rules[e.ruleKey]?.cooldown_seconds ?? 0) * 1000;
    const last = st.lastApplied.get(ruleStateKey(e.userId, e.deviceId, e.ruleKey));
    const at = e.occurredAt.getTime();
    if (cd <= 0 || last === undefined || at > last - cd) return [];
    return [{ userId: e.userId, deviceId: e.deviceId, ruleKey: e.ruleKey, from: new Date(at - cd).toISOString(), to: new Date(at + cd).toISOString() }];
  });
  for (const r of await loadAppliedNear(tx, windows)) st.appliedNear.get(ruleStateKey(r.user_id, r.device_id, r.rule_key))!.push(r.occurred_at.getTime());
}
