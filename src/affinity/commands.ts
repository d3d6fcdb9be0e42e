import type { CommandKey } from '../ledger/commands.ts';

/** A validated `affinity.event`: a rule moves the score, subject to cooldown and daily caps. */
export interface AffinityEventCommand extends CommandKey {
  op: 'event';
  userId: string;
  deviceId: string;
  ruleKey: string;
  source: string;
  /** Drives cooldown and the natural day; never the processing time, so a retry decides the same. */
  occurredAt: Date;
  units: number;
}

/** A validated `affinity.adjust`: an operator moves the score directly (no rule, cooldown or caps). */
export interface AffinityAdjustCommand extends CommandKey {
  op: 'adjust';
  userId: string;
  deviceId: string;
  delta: number;
  operatorId: string;
  reason: string;
  occurredAt: Date;
}

export type AffinityCommand = AffinityEventCommand | AffinityAdjustCommand;

/** A reward granted by crossing a level, as reported in results and level_up pushes. */
export interface LevelReward {
  level: number;
  asset: string;
  amount: number;
  event_id: string;
  /** `applied`: results list only rewards granted by this very change. */
  outcome?: string;
}

/** A reward whose grant did not apply: its level stays open and is tried again at its next crossing. */
export interface PendingLevelReward {
  level: number;
  asset: string;
  amount: number;
  event_id: string;
  /** The ledger's failure code (e.g. idempotency_conflict, invalid_payload). */
  reason: string;
}
