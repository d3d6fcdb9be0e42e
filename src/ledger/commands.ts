import type { Usage } from '../domain/pricing.ts';
import type { Policy } from '../domain/account.ts';
import type { PermanentJobError } from '../errors.ts';

/** What every command carries for exactly-once: the queue + event id it is keyed by and its payload hash. */
export interface CommandKey {
  queue: string;
  eventId: string;
  /** BullMQ job id, for dead-lettering (equal to eventId for well-behaved producers). */
  jobId: string;
  payloadHash: string;
  /** The payload as received, kept with a dead letter. */
  payload: unknown;
}

export interface GrantCommand extends CommandKey {
  op: 'grant';
  userId: string;
  asset: string;
  amount: bigint;
  source: string;
  sourceId: string | null;
  /** ISO timestamp, null = never, undefined = the asset's default expiry. */
  expiresAt: string | null | undefined;
  description: string | null;
}

export interface ChargeCommand extends CommandKey {
  op: 'charge';
  userId: string;
  asset: string;
  sourceType: string;
  sourceId: string;
  usage: Usage | null;
  /** Explicit amount; otherwise priced from the asset's pricing for sourceType. */
  amount: bigint | null;
  policy: Policy;
  occurredAt: Date;
  description: string | null;
  /** Settles this hold: `policy` is ignored, what exceeds the hold is post-paid. */
  holdId?: string | null;
}

/** Gives back (part of) an applied charge to the batches it burned. The account is the charge's. */
export interface RefundCommand extends CommandKey {
  op: 'refund';
  chargeEventId: string;
  /** null = all that is left refundable. */
  amount: bigint | null;
  reason: string | null;
  /**
   * Until when (epoch ms, wall clock) a charge not applied yet is waited for — it may still be in flight, in this
   * process or another — before the refund fails `unknown_charge`. Absent: not waited for.
   */
  waitForChargeUntil?: number;
}

/** An external event turned into a grant by the matching reward rule in the config in force. */
export interface RewardCommand extends CommandKey {
  op: 'reward';
  eventType: string;
  /** null: the newest version the rule lists (the event did not say). */
  eventVersion: string | null;
  userId: string;
  sourceRefId: string;
  occurredAt: Date;
}

/**
 * An operator's correction (`POST /v1/admin/ledger/adjust`): an `adjust` entry. Positive: a batch with the asset's
 * default expiry (it pays debt first, as a grant does); negative: burns like a post-paid charge (it may overdraw).
 * Keyed for exactly-once like a queue event, under its own namespace (`queue`).
 */
export interface AdjustCommand extends CommandKey {
  op: 'adjust';
  userId: string;
  asset: string;
  /** Signed, never 0. */
  amount: bigint;
  reason: string;
  operatorId: string;
}

export type LedgerCommand = GrantCommand | ChargeCommand | RefundCommand | RewardCommand | AdjustCommand;

/** A job's return value: small, JSON, CONTRACT §3. */
export type ApplyResult = { outcome: string } & Record<string, unknown>;

/**
 * A refund whose charge is not applied yet (it may still be in flight, possibly in another worker process): the
 * refund is neither applied nor failed, and is retried like a transient fault until its wait ends.
 */
export class ChargeNotApplied extends Error {
  readonly code = 'charge_not_applied';
  constructor(chargeEventId: string) {
    super(`charge "${chargeEventId}" is not applied yet; the refund waits for it`);
    this.name = 'ChargeNotApplied';
  }
}

export type CommandOutcome = { ok: true; result: ApplyResult } | { ok: false; error: PermanentJobError | ChargeNotApplied };
