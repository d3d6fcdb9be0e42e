import type { ConfigDocument } from '../config/document.ts';
import { dayKey } from '../domain/affinity.ts';
import type { ApplyResult, CommandOutcome, GrantCommand } from '../ledger/commands.ts';
import type { DeadLetter } from '../ledger/sql/dead-letters.ts';
import type { OutboxRow } from '../ledger/sql/outbox.ts';
import type { ProcessedRow } from '../ledger/sql/processed-events.ts';
import { futureProblem } from '../queues/common.ts';
import type { AffinityCommand, LevelReward, PendingLevelReward } from './commands.ts';
import { affinitySettingsOf, type AffinitySettings } from './settings.ts';
import type { GrantedLevelRow } from './sql/granted-levels.ts';
import type { LogRow } from './sql/log.ts';

export interface AffinityApplyContext {
  config: ConfigDocument;
  /** The transaction's clock (reward grants' default expiry, the future check); decisions use each event's occurred_at. */
  now: Date;
  /** Resolves when this transaction may lock its devices: after the group-commit runs ahead of it on the same rows. */
  beforeLocks?: () => Promise<void>;
}

/** Scope of the all-rules daily counter; no rule key can be '*'. */
export const GLOBAL_SCOPE = '*';

/** One locked device while a batch is decided: later commands see earlier ones' effects. */
export interface DeviceState {
  userId: string;
  deviceId: string;
  value: number;
  level: number;
  lastActiveAt: number | null;
  decayedThrough: string | null;
  active: boolean;
  changed: boolean;
}

/** An affinity command's result (CONTRACT §3), as stored with its decision and returned to the job. */
export type AffinityResult = ApplyResult & {
  change: number;
  before: number;
  after: number;
  level_before: number;
  level_after: number;
  rewards: LevelReward[];
  /** Present only when some reward of a level crossed did not apply (its level stays open). */
  rewards_pending?: PendingLevelReward[];
};

/** The rewards of the levels one applied command crossed, granted through the ledger after every decision. */
export interface LevelRewardPlan {
  userId: string;
  deviceId: string;
  /** Levels crossed and not rewarded yet, lowest first. */
  levels: number[];
  /** `outcome`: the ledger's answer (an outcome, or a failure code), once it has answered. */
  grants: { cmd: GrantCommand; reward: LevelReward; outcome?: string }[];
  /** The command's result and its level_up row: their `rewards` are filled in once the ledger has answered. */
  result: AffinityResult;
  levelUp: OutboxRow | undefined;
}

/** Everything the write phase sends, accumulated by the decisions. */
export interface Writes {
  ruleStates: Map<string, { user_id: string; device_id: string; rule_key: string; last_applied_at: string }>;
  dailyAdds: Map<string, { user_id: string; device_id: string; day: string; scope: string; add: number }>;
  log: LogRow[];
  outbox: OutboxRow[];
  grantedLevels: GrantedLevelRow[];
  processed: ProcessedRow[];
  deadLetters: DeadLetter[];
}

/**
 * The one state an affinity transaction's phases share: what was asked (commands, context, settings, per-command
 * facts found before any lock), what was loaded under the device locks, and what the decisions will write.
 */
export interface ApplyState {
  readonly cmds: AffinityCommand[];
  readonly ctx: AffinityApplyContext;
  readonly settings: AffinitySettings;
  readonly outcomes: CommandOutcome[];
  /** Per command: bad input found before any lock (a future occurred_at) — such a command touches no row. */
  readonly futures: (string | null)[];
  /** Per rule event: its natural day in the affinity timezone. */
  readonly days: (string | null)[];
  /** Loaded under the locks (see load.ts), then moved by the decisions. */
  devices: Map<string, DeviceState>;
  decided: Map<string, ProcessedRow>;
  /** Per (device, rule): the latest applied occurred_at, and the applied times a cooldown check looks at. */
  lastApplied: Map<string, number>;
  appliedNear: Map<string, number[]>;
  /** Per (device, day, scope): positive change counted. */
  daily: Map<string, number>;
  /** Per (device, level): rewarded already (affinity_granted_levels), or being rewarded by this transaction. */
  rewardedLevels: Set<string>;
  rewardPlans: LevelRewardPlan[];
  /** Commands that replay a decided event: answered once this batch's own results are final. */
  replays: { index: number; prior: ProcessedRow }[];
  writes: Writes;
}

const SEP = '\u0000';
export const deviceKey = (userId: string, deviceId: string) => `${userId}${SEP}${deviceId}`;
export const ruleStateKey = (userId: string, deviceId: string, ruleKey: string) => `${userId}${SEP}${deviceId}${SEP}${ruleKey}`;
export const dailyKey = (userId: string, deviceId: string, day: string, scope: string) => `${userId}${SEP}${deviceId}${SEP}${day}${SEP}${scope}`;
export const levelKey = (userId: string, deviceId: string, level: number) => `${userId}${SEP}${deviceId}${SEP}${level}`;
export const eventKey = (queue: string, eventId: string) => `${queue}${SEP}${eventId}`;

export function createApplyState(cmds: AffinityCommand[], ctx: AffinityApplyContext): ApplyState {
  const settings = affinitySettingsOf(ctx.config);
  return {
    cmds,
    ctx,
    settings,
    outcomes: new Array(cmds.length),
    futures: cmds.map((c) => (c.op === 'event' ? futureProblem(c.occurredAt, ctx.now) : null)),
    days: cmds.map((c) => (c.op === 'event' ? dayKey(c.occurredAt, settings.timezone) : null)),
    devices: new Map(),
    decided: new Map(),
    lastApplied: new Map(),
    appliedNear: new Map(),
    daily: new Map(),
    rewardedLevels: new Set(),
    rewardPlans: [],
    replays: [],
    writes: { ruleStates: new Map(), dailyAdds: new Map(), log: [], outbox: [], grantedLevels: [], processed: [], deadLetters: [] },
  };
}

export function unique<T>(items: T[], key: (t: T) => string): T[] {
  return [...new Map(items.map((t) => [key(t), t])).values()];
}
