import type { ConfigDocument } from '../config/document.ts';
import type { Tx } from '../db/client.ts';
import { clampChange, crossedLevels, dayKey, decideEvent, levelFor, type AffinityOutcome } from '../domain/affinity.ts';
import { PermanentJobError, invalidPayload } from '../errors.ts';
import { futureProblem } from '../queues/common.ts';
import { applyLedgerCommands } from '../ledger/apply.ts';
import type { ApplyResult, CommandOutcome, GrantCommand } from '../ledger/commands.ts';
import { recordDeadLetters, type DeadLetter } from '../ledger/sql/dead-letters.ts';
import { insertOutbox, type OutboxRow } from '../ledger/sql/outbox.ts';
import { findProcessed, insertProcessed, type ProcessedRow } from '../ledger/sql/processed-events.ts';
import type { AffinityCommand, AffinityEventCommand, LevelReward } from './commands.ts';
import { levelRewardGrants } from './rewards.ts';
import { affinitySettingsOf, type AffinitySettings } from './settings.ts';
import { addDaily, loadAppliedNear, loadDaily, loadRuleStates, upsertRuleStates } from './sql/counters.ts';
import { lockDevices, updateDevices } from './sql/devices.ts';
import { insertGrantedLevels, loadGrantedLevels, type GrantedLevelRow } from './sql/granted-levels.ts';
import { insertLog, type LogRow } from './sql/log.ts';

export interface AffinityApplyContext {
  config: ConfigDocument;
  /** The transaction's clock (reward grants' default expiry, the future check); decisions use each event's occurred_at. */
  now: Date;
}

export interface AffinityReport {
  outcomes: CommandOutcome[];
  /** Outbox rows written, ours and the reward grants' (for the relay's after-commit fast path). */
  outboxRows: number;
}

/** Scope of the all-rules daily counter; no rule key can be '*'. */
export const GLOBAL_SCOPE = '*';

/** In-memory state of one locked device while a batch is decided. */
interface DeviceState {
  userId: string;
  deviceId: string;
  value: number;
  level: number;
  lastActiveAt: number | null;
  decayedThrough: string | null;
  changed: boolean;
}

const k2 = (a: string, b: string) => `${a}\u0000${b}`;
const k3 = (a: string, b: string, c: string) => `${a}\u0000${b}\u0000${c}`;

function unique<T>(items: T[], key: (t: T) => string): T[] {
  return [...new Map(items.map((t) => [key(t), t])).values()];
}

/**
 * Applies affinity commands in one transaction, in order, with the ledger's shape: lock devices (sorted) →
 * find already-decided events → load cooldowns, daily counters and granted levels → decide every command
 * with the domain functions (later commands see earlier ones' effects) → write scores, log rows, counters,
 * granted levels, decisions, outbox rows, and the level rewards through the credits ledger — all or nothing.
 */
export async function applyAffinityCommands(tx: Tx, cmds: AffinityCommand[], ctx: AffinityApplyContext): Promise<AffinityReport> {
  const s = affinitySettingsOf(ctx.config);
  const outcomes: CommandOutcome[] = new Array(cmds.length);
  if (cmds.length === 0) return { outcomes, outboxRows: 0 };

  // Bad input found before any lock: such an event fails alone and touches no row (not even its device's).
  const futures = cmds.map((c) => (c.op === 'event' ? futureProblem(c.occurredAt, ctx.now) : null));
  const deviceKeys = unique(
    cmds.filter((_, i) => futures[i] === null).map((c) => ({ userId: c.userId, deviceId: c.deviceId })),
    (k) => k2(k.userId, k.deviceId),
  );
  // Locked first: the dedupe read below then sees whatever a concurrent holder of these devices committed.
  const deviceRows = await lockDevices(tx, deviceKeys, levelFor(s.levels, 0));
  const days = cmds.map((c) => (c.op === 'event' ? dayKey(c.occurredAt, s.timezone) : null));
  const events = cmds.flatMap((c) => (c.op === 'event' ? [c] : []));
  // A hot device sends the same keys many times per batch: ask for each once.
  const dailyKeys = unique(
    cmds.flatMap((c, i) =>
      c.op === 'event' ? [GLOBAL_SCOPE, c.ruleKey].map((scope) => ({ userId: c.userId, deviceId: c.deviceId, day: days[i]!, scope })) : [],
    ),
    (k) => k3(k2(k.userId, k.deviceId), k.day, k.scope),
  );
  const ruleKeys = unique(
    events.map((e) => ({ userId: e.userId, deviceId: e.deviceId, ruleKey: e.ruleKey })),
    (k) => k3(k.userId, k.deviceId, k.ruleKey),
  );
  const [processed, ruleRows, dailyRows, grantedRows] = await Promise.all([
    findProcessed(tx, cmds.map((c) => c.queue), cmds.map((c) => c.eventId)),
    loadRuleStates(tx, ruleKeys),
    loadDaily(tx, dailyKeys),
    loadGrantedLevels(tx, deviceKeys),
  ]);

  const devices = new Map<string, DeviceState>();
  for (const r of deviceRows) {
    devices.set(k2(r.user_id, r.device_id), {
      userId: r.user_id,
      deviceId: r.device_id,
      value: r.value,
      level: r.level,
      lastActiveAt: r.last_active_at ? r.last_active_at.getTime() : null,
      decayedThrough: r.decayed_through,
      changed: false,
    });
  }
  const decided = new Map(processed.map((p) => [k2(p.queue, p.event_id), p]));
  const lastApplied = new Map(ruleRows.map((r) => [k3(r.user_id, r.device_id, r.rule_key), r.last_applied_at.getTime()]));
  const appliedNear = await loadCooldownHistory(tx, s, events, lastApplied);
  const daily = new Map(dailyRows.map((r) => [k3(k2(r.user_id, r.device_id), r.day, r.scope), Number(r.positive_sum)]));
  const granted = new Set(grantedRows.map((g) => k3(g.user_id, g.device_id, String(g.level))));

  const dailyAdds = new Map<string, { user_id: string; device_id: string; day: string; scope: string; add: number }>();
  const ruleUpdates = new Map<string, { user_id: string; device_id: string; rule_key: string; last_applied_at: string }>();
  const logRows: LogRow[] = [];
  const outbox: OutboxRow[] = [];
  const newGranted: GrantedLevelRow[] = [];
  const grants: GrantCommand[] = [];
  const rewardRefs: { grant: GrantCommand; reward: LevelReward }[] = [];
  const processedRows: ProcessedRow[] = [];
  const deadLetters: DeadLetter[] = [];

  cmds.forEach((cmd, i) => {
    const key = k2(cmd.queue, cmd.eventId);
    const prior = decided.get(key);
    if (prior) {
      if (prior.payload_hash !== cmd.payloadHash) {
        const error = new PermanentJobError('idempotency_conflict', `event_id "${cmd.eventId}" was already used with a different payload`);
        outcomes[i] = { ok: false, error };
        deadLetters.push({ queue: cmd.queue, job_id: cmd.jobId, event_id: cmd.eventId, reason_code: error.code, reason: error.message, payload: cmd.payload });
      } else {
        outcomes[i] = { ok: true, result: { ...prior.result, outcome: 'noop_duplicate', original_outcome: prior.result.outcome } };
      }
      return;
    }
    const future = futures[i];
    if (future) {
      const error = invalidPayload(future);
      outcomes[i] = { ok: false, error };
      deadLetters.push({ queue: cmd.queue, job_id: cmd.jobId, event_id: cmd.eventId, reason_code: error.code, reason: error.message, payload: cmd.payload });
      return;
    }
    const dev = devices.get(k2(cmd.userId, cmd.deviceId))!;
    const day = days[i]!;
    let outcome: AffinityOutcome;
    let change: number;
    if (cmd.op === 'event') {
      const ruleState = k3(cmd.userId, cmd.deviceId, cmd.ruleKey);
      const ruleDay = k3(k2(cmd.userId, cmd.deviceId), day, cmd.ruleKey);
      const globalDay = k3(k2(cmd.userId, cmd.deviceId), day, GLOBAL_SCOPE);
      ({ outcome, change } = decideEvent({
        rule: s.rules[cmd.ruleKey],
        units: cmd.units,
        occurredAt: cmd.occurredAt.getTime(),
        appliedAt: appliedNear.get(ruleState) ?? [],
        ruleUsedToday: daily.get(ruleDay) ?? 0,
        globalUsedToday: daily.get(globalDay) ?? 0,
        globalDailyCap: s.globalDailyCap,
        value: dev.value,
        maxAffinity: s.maxAffinity,
      }));
      if (outcome === 'applied') {
        const at = Math.max(lastApplied.get(ruleState) ?? 0, cmd.occurredAt.getTime());
        lastApplied.set(ruleState, at);
        appliedNear.set(ruleState, [...(appliedNear.get(ruleState) ?? []), cmd.occurredAt.getTime()]);
        ruleUpdates.set(ruleState, { user_id: cmd.userId, device_id: cmd.deviceId, rule_key: cmd.ruleKey, last_applied_at: new Date(at).toISOString() });
        if (change > 0) {
          for (const [scope, dk] of [[cmd.ruleKey, ruleDay], [GLOBAL_SCOPE, globalDay]] as const) {
            daily.set(dk, (daily.get(dk) ?? 0) + change);
            const add = dailyAdds.get(dk) ?? { user_id: cmd.userId, device_id: cmd.deviceId, day, scope, add: 0 };
            add.add += change;
            dailyAdds.set(dk, add);
          }
        }
      }
    } else {
      // Admin adjust: no rule, cooldown or caps; still clamped to [0, max_affinity].
      change = clampChange(dev.value, cmd.delta, s.maxAffinity);
      outcome = change === 0 ? 'noop_value_boundary' : 'applied';
    }

    const before = dev.value;
    const levelBefore = dev.level;
    let rewards: LevelReward[] = [];
    if (outcome === 'applied') {
      dev.value += change;
      dev.level = levelFor(s.levels, dev.value);
      dev.lastActiveAt = Math.max(dev.lastActiveAt ?? 0, cmd.occurredAt.getTime());
      dev.changed = true;
      rewards = grantCrossedLevels(s, dev, before);
      logRows.push({
        user_id: cmd.userId,
        device_id: cmd.deviceId,
        kind: cmd.op,
        event_id: cmd.eventId,
        rule_key: cmd.op === 'event' ? cmd.ruleKey : null,
        source: cmd.op === 'event' ? cmd.source : 'admin',
        outcome,
        change,
        before,
        after: dev.value,
        level_before: levelBefore,
        level_after: dev.level,
        day: cmd.op === 'event' ? day : null,
        occurred_at: cmd.occurredAt.toISOString(),
        operator_id: cmd.op === 'adjust' ? cmd.operatorId : null,
        reason: cmd.op === 'adjust' ? cmd.reason : null,
      });
      outbox.push(...notifications(dev, change, before, levelBefore, rewards, cmd.op === 'event' ? cmd.ruleKey : null, cmd.op === 'event' ? cmd.source : 'admin'));
    }
    const result: ApplyResult = {
      outcome,
      change,
      before,
      after: dev.value,
      level_before: levelBefore,
      level_after: dev.level,
      rewards,
    };
    outcomes[i] = { ok: true, result };
    const row = { queue: cmd.queue, event_id: cmd.eventId, payload_hash: cmd.payloadHash, result };
    decided.set(key, row);
    processedRows.push(row);
  });

  /** Each level crossed for the first time ever earns its rewards, as grants in this same transaction. */
  function grantCrossedLevels(st: AffinitySettings, dev: DeviceState, before: number): LevelReward[] {
    const fresh = crossedLevels(st.levels, before, dev.value).filter((l) => !granted.has(k3(dev.userId, dev.deviceId, String(l.level))));
    if (fresh.length === 0) return [];
    const made = levelRewardGrants(dev.userId, dev.deviceId, fresh);
    for (const l of fresh) {
      granted.add(k3(dev.userId, dev.deviceId, String(l.level)));
      newGranted.push({ user_id: dev.userId, device_id: dev.deviceId, level: l.level, event_id: made.rewards.find((r) => r.level === l.level)?.event_id ?? `lvl-${l.level}` });
    }
    made.grants.forEach((g, j) => rewardRefs.push({ grant: g, reward: made.rewards[j]! }));
    grants.push(...made.grants);
    return made.rewards;
  }

  // Rewards go through the credits ledger in this transaction: it locks accounts (after our devices).
  let ledgerOutbox = 0;
  if (grants.length > 0) {
    const report = await applyLedgerCommands(tx, grants, { config: ctx.config, now: ctx.now });
    ledgerOutbox = report.outboxRows;
    report.outcomes.forEach((o, j) => {
      rewardRefs[j]!.reward.outcome = o.ok ? o.result.outcome : o.error.code;
    });
  }

  await Promise.all([
    updateDevices(
      tx,
      [...devices.values()]
        .filter((d) => d.changed)
        .map((d) => ({
          user_id: d.userId,
          device_id: d.deviceId,
          value: d.value,
          level: d.level,
          last_active_at: d.lastActiveAt === null ? null : new Date(d.lastActiveAt).toISOString(),
          decayed_through: d.decayedThrough,
        })),
    ),
    upsertRuleStates(tx, [...ruleUpdates.values()]),
    addDaily(tx, [...dailyAdds.values()].map((a) => ({ ...a, add: String(a.add) }))),
    insertLog(tx, logRows),
    insertGrantedLevels(tx, newGranted),
    insertProcessed(tx, processedRows),
    insertOutbox(tx, outbox),
    deadLetters.length > 0 ? recordDeadLetters(tx, deadLetters) : Promise.resolve(),
  ]);
  return { outcomes, outboxRows: outbox.length + ledgerOutbox };
}

/**
 * Per (user, device, rule): the applied times a cooldown check must look at — the latest applied event and,
 * for late events (occurred a cooldown or more before it), the applied events logged around them.
 * In-order traffic has no late events and costs no query.
 */
async function loadCooldownHistory(
  tx: Tx,
  s: AffinitySettings,
  events: AffinityEventCommand[],
  lastApplied: Map<string, number>,
): Promise<Map<string, number[]>> {
  const near = new Map<string, number[]>();
  for (const [key, t] of lastApplied) near.set(key, [t]);
  const windows = events.flatMap((e) => {
    const cd = (s.rules[e.ruleKey]?.cooldown_seconds ?? 0) * 1000;
    const last = lastApplied.get(k3(e.userId, e.deviceId, e.ruleKey));
    const at = e.occurredAt.getTime();
    if (cd <= 0 || last === undefined || at > last - cd) return [];
    return [{ userId: e.userId, deviceId: e.deviceId, ruleKey: e.ruleKey, from: new Date(at - cd).toISOString(), to: new Date(at + cd).toISOString() }];
  });
  for (const r of await loadAppliedNear(tx, windows)) near.get(k3(r.user_id, r.device_id, r.rule_key))!.push(r.occurred_at.getTime());
  return near;
}

/** affinity_update always; level_up / level_down when the level moved (CONTRACT §5 shapes). */
export function notifications(
  dev: { userId: string; deviceId: string; value: number; level: number },
  change: number,
  before: number,
  levelBefore: number,
  rewards: LevelReward[],
  ruleKey: string | null,
  source: string,
): OutboxRow[] {
  const rows: OutboxRow[] = [
    { user_id: dev.userId, type: 'affinity_update', data: { device_id: dev.deviceId, change, before, after: dev.value, rule_key: ruleKey, source } },
  ];
  if (dev.level > levelBefore) {
    rows.push({
      user_id: dev.userId,
      type: 'level_up',
      data: { device_id: dev.deviceId, old_level: levelBefore, new_level: dev.level, rewards: rewards.map((r) => ({ level: r.level, asset: r.asset, amount: r.amount })) },
    });
  } else if (dev.level < levelBefore) {
    rows.push({ user_id: dev.userId, type: 'level_down', data: { device_id: dev.deviceId, old_level: levelBefore, new_level: dev.level } });
  }
  return rows;
}
