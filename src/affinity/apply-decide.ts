import { clampChange, decideEvent, levelFor, type AffinityOutcome } from '../domain/affinity.ts';
import { PermanentJobError, invalidPayload } from '../errors.ts';
import { planLevelRewards } from './apply-rewards.ts';
import { GLOBAL_SCOPE, dailyKey, deviceKey, eventKey, ruleStateKey, type AffinityResult, type ApplyState, type DeviceState } from './apply-state.ts';
import type { AffinityAdjustCommand, AffinityCommand, AffinityEventCommand } from './commands.ts';
import { notifications } from './notifications.ts';

interface Decision {
  outcome: AffinityOutcome;
  change: number;
}

/**
 * Decides command `i` against the state as earlier commands of the batch left it: a replay answers its
 * original result; bad input fails alone; otherwise the rule pipeline (or the admin adjust) decides, and an
 * applied change moves the device, logs, notifies and plans the rewards of the levels it crossed.
 */
export function decideCommand(st: ApplyState, i: number): void {
  const cmd = st.cmds[i]!;
  if (answerReplay(st, cmd, i)) return;
  const future = st.futures[i];
  if (future) return refuse(st, cmd, i, invalidPayload(future));
  const dev = st.devices.get(deviceKey(cmd.userId, cmd.deviceId))!;
  const { outcome, change } = cmd.op === 'event' ? decideRuleEvent(st, cmd, dev, st.days[i]!) : decideAdjust(st, cmd, dev);
  const result: AffinityResult = {
    outcome,
    change,
    before: dev.value,
    after: dev.value,
    level_before: dev.level,
    level_after: dev.level,
    rewards: [],
  };
  if (outcome === 'applied') applyChange(st, cmd, dev, change, result, st.days[i] ?? null);
  const row = { queue: cmd.queue, event_id: cmd.eventId, payload_hash: cmd.payloadHash, result };
  st.outcomes[i] = { ok: true, result };
  st.decided.set(eventKey(cmd.queue, cmd.eventId), row);
  st.writes.processed.push(row);
}

/**
 * An event decided before (by an earlier transaction or earlier in this batch): a conflict, or — answered by
 * answerReplays once the level rewards are settled — its original result.
 */
function answerReplay(st: ApplyState, cmd: AffinityCommand, i: number): boolean {
  const prior = st.decided.get(eventKey(cmd.queue, cmd.eventId));
  if (!prior) return false;
  if (prior.payload_hash !== cmd.payloadHash) {
    refuse(st, cmd, i, new PermanentJobError('idempotency_conflict', `event_id "${cmd.eventId}" was already used with a different payload`));
  } else {
    st.replays.push({ index: i, prior });
  }
  return true;
}

/** Replays answer `noop_duplicate` with the original result — for one decided in this batch, as finally settled. */
export function answerReplays(st: ApplyState): void {
  for (const { index, prior } of st.replays) {
    st.outcomes[index] = { ok: true, result: { ...prior.result, outcome: 'noop_duplicate', original_outcome: prior.result.outcome } };
  }
}

function refuse(st: ApplyState, cmd: AffinityCommand, i: number, error: PermanentJobError): void {
  st.outcomes[i] = { ok: false, error };
  st.writes.deadLetters.push({ queue: cmd.queue, job_id: cmd.jobId, event_id: cmd.eventId, reason_code: error.code, reason: error.message, payload: cmd.payload });
}

/** The rule pipeline over the device's cooldown clock and the day's counters; an applied event updates both. */
function decideRuleEvent(st: ApplyState, cmd: AffinityEventCommand, dev: DeviceState, day: string): Decision {
  const s = st.settings;
  const rule = ruleStateKey(cmd.userId, cmd.deviceId, cmd.ruleKey);
  const ruleDay = dailyKey(cmd.userId, cmd.deviceId, day, cmd.ruleKey);
  const globalDay = dailyKey(cmd.userId, cmd.deviceId, day, GLOBAL_SCOPE);
  const decision = decideEvent({
    deviceActive: dev.active,
    rule: s.rules[cmd.ruleKey],
    units: cmd.units,
    occurredAt: cmd.occurredAt.getTime(),
    appliedAt: st.appliedNear.get(rule) ?? [],
    ruleUsedToday: st.daily.get(ruleDay) ?? 0,
    globalUsedToday: st.daily.get(globalDay) ?? 0,
    globalDailyCap: s.globalDailyCap,
    value: dev.value,
    maxAffinity: s.maxAffinity,
  });
  if (decision.outcome !== 'applied') return decision;

  const at = Math.max(st.lastApplied.get(rule) ?? 0, cmd.occurredAt.getTime());
  st.lastApplied.set(rule, at);
  st.appliedNear.set(rule, [...(st.appliedNear.get(rule) ?? []), cmd.occurredAt.getTime()]);
  st.writes.ruleStates.set(rule, { user_id: cmd.userId, device_id: cmd.deviceId, rule_key: cmd.ruleKey, last_applied_at: new Date(at).toISOString() });
  // Counters hold the positive change applied: taking some back never frees cap.
  if (decision.change > 0) {
    for (const [scope, key] of [[cmd.ruleKey, ruleDay], [GLOBAL_SCOPE, globalDay]] as const) {
      st.daily.set(key, (st.daily.get(key) ?? 0) + decision.change);
      const add = st.writes.dailyAdds.get(key) ?? { user_id: cmd.userId, device_id: cmd.deviceId, day, scope, add: 0 };
      add.add += decision.change;
      st.writes.dailyAdds.set(key, add);
    }
  }
  return decision;
}

/**
 * Admin adjust: no rule, cooldown or caps; still clamped to [0, max_affinity]. It applies to a deactivated
 * device too: an operator correcting a score means it (docs/affinity.md).
 */
function decideAdjust(st: ApplyState, cmd: AffinityAdjustCommand, dev: DeviceState): Decision {
  const change = clampChange(dev.value, cmd.delta, st.settings.maxAffinity);
  return { outcome: change === 0 ? 'noop_value_boundary' : 'applied', change };
}

/** Moves the device, logs the change, queues its pushes and plans the rewards of the levels it crossed. */
function applyChange(st: ApplyState, cmd: AffinityCommand, dev: DeviceState, change: number, result: AffinityResult, day: string | null): void {
  const before = dev.value;
  const levelBefore = dev.level;
  dev.value += change;
  dev.level = levelFor(st.settings.levels, dev.value);
  dev.lastActiveAt = Math.max(dev.lastActiveAt ?? 0, cmd.occurredAt.getTime());
  dev.changed = true;
  result.after = dev.value;
  result.level_after = dev.level;
  const isEvent = cmd.op === 'event';
  st.writes.log.push({
    user_id: cmd.userId,
    device_id: cmd.deviceId,
    kind: cmd.op,
    event_id: cmd.eventId,
    rule_key: isEvent ? cmd.ruleKey : null,
    source: isEvent ? cmd.source : 'admin',
    outcome: 'applied',
    change,
    before,
    after: dev.value,
    level_before: levelBefore,
    level_after: dev.level,
    day: isEvent ? day : null,
    occurred_at: cmd.occurredAt.toISOString(),
    operator_id: isEvent ? null : cmd.operatorId,
    reason: isEvent ? null : cmd.reason,
  });
  const rows = notifications(dev, change, before, levelBefore, [], isEvent ? cmd.ruleKey : null, isEvent ? cmd.source : 'admin');
  st.writes.outbox.push(...rows);
  planLevelRewards(st, dev, before, result, rows.find((r) => r.type === 'level_up'));
}
