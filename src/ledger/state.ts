import type { BalanceRule } from '../alerts/balance-rules.ts';
import type { ConfigDocument, PricingRule } from '../config/document.ts';
import type { AccountState, BatchState, DebtState, Effect, EntryDraft } from '../domain/account.ts';
import type { ChargeLedger, PlannedPart } from '../domain/refund.ts';
import type { PermanentJobError } from '../errors.ts';
import type { ChargeNotApplied, CommandOutcome, LedgerCommand } from './commands.ts';
import type { DeadLetter } from './sql/dead-letters.ts';
import type { HoldRow, HoldSettlement } from './sql/holds.ts';
import type { ProcessedRow } from './sql/processed-events.ts';
import type { ChargeEntryRow, ChargePartsRow } from './sql/refunds.ts';
import type { RewardCounterRow } from './sql/reward-counters.ts';

export interface Target {
  userId: string;
  asset: string;
}

/**
 * What a command resolves to before accounts are locked: which account, which rule, which charge. An `error`
 * (or `pending`) is only final once the command is known not to be a replay — a replay answers noop_duplicate
 * whatever the config says now.
 */
export type Prepared =
  | { kind: 'error'; error: PermanentJobError }
  | { kind: 'no_rule' }
  /** A refund whose charge is not applied (yet). */
  | { kind: 'pending'; chargeEventId: string }
  | {
      kind: 'ok';
      target: Target;
      /** Charges priced by usage: the rule in force at the usage's occurred_at. */
      pricing?: PricingRule;
      reward?: { amount: bigint; dailyCap: number | undefined; day: string };
      /** Refunds: the charge's entry, or the index of the charge command earlier in this batch. */
      charge?: { entry: ChargeEntryRow } | { index: number };
    };

/** What an entry records beyond the domain draft; null for entries no command asked for (expiry). */
export interface EntryMeta {
  eventId: string;
  sourceType: string;
  sourceId: string | null;
  usage: unknown;
  description: string | null;
  occurredAt: Date | null;
  /** The entry's kind when it is not the domain's (an operator's adjust is a grant or a burn, recorded as `adjust`). */
  kind?: 'adjust';
}

/** One entry to write. Results name it by object until ids exist (`transaction_id: PendingEntry`). */
export interface PendingEntry {
  draft: EntryDraft;
  acct: AccountState;
  meta: EntryMeta | null;
  id?: bigint;
}

/** A refund to record: what was asked, what came back, and the parts it took (`restored` set by the domain). */
export interface PendingRefund {
  eventId: string;
  charge: bigint | PendingEntry;
  requested: bigint;
  restored: bigint;
  entry: PendingEntry | null;
  parts: (PlannedPart & { restored: boolean })[];
}

/** A refund's charge, as the transaction tracks it across refunds of it: what is left, and what the entry records. */
export interface ChargeRefunds extends ChargeLedger {
  /** The charge's entry: its id, or the entry this transaction is writing for it. */
  charge: bigint | PendingEntry;
  sourceType: string;
  model: string | null;
  occurredAt: Date | null;
}

/**
 * Everything one ledger transaction knows, shared by its phases (apply.ts is the table of contents). Each phase
 * reads what earlier ones filled in and adds its own part; nothing else holds state between them.
 */
export interface LedgerTx {
  cmds: LedgerCommand[];
  config: ConfigDocument;
  /** The transaction's one clock (tally_now() when it began), as a Date and in epoch ms. */
  now: Date;
  nowMs: number;

  /** prepare: what each command resolves to against the config (errors wait until duplicates are known). */
  prepared: Prepared[];
  /** lock: locked accounts by `accountKey`. */
  accounts: Map<string, AccountState>;
  /** lock, then apply: decisions by `eventKey` — found in the database, then added as commands are decided. */
  decided: Map<string, ProcessedRow>;
  /** decide: indexes of the commands to apply, in order. */
  live: number[];

  /** load: what the commands to apply need, read under the locks. */
  loaded: {
    held: Map<bigint, bigint>;
    holds: Map<string, HoldRow>;
    counters: Map<string, number>;
    batches: Map<bigint, BatchState>;
    debts: Map<bigint, DebtState>;
    chargeParts: Map<bigint, ChargePartsRow>;
    ids: { batchIds: bigint[]; entryIds: bigint[] };
  };

  /** apply: per command, its outcome; and everything the write phase turns into statements. */
  outcomes: (CommandOutcome | undefined)[];
  deadLetters: DeadLetter[];
  pending: PendingEntry[];
  processedRows: ProcessedRow[];
  settlements: HoldSettlement[];
  refunds: PendingRefund[];
  rewardCounts: Map<string, RewardCounterRow>;
  /** Charges applied by this transaction, by command index (a refund later in it may give them back). */
  appliedCharges: Map<number, PendingEntry>;
  chargeRefunds: Map<string, ChargeRefunds>;
  /** Provisional ids handed to new batches (PROVISIONAL + n), in creation order. */
  newBatches: bigint;
  expired: { batches: number; amount: bigint };

  /** lock, then watch: the balance-alert keys that have fired, per account (persisted with it; alerts.ts). */
  alertsFired: Map<AccountState, string[]>;
  /** watch: the balance alerts each entry crossed, written as outbox rows right after its balance_changed. */
  alerts: Map<PendingEntry, BalanceRule[]>;
}

export function newLedgerTx(cmds: LedgerCommand[], config: ConfigDocument, now: Date): LedgerTx {
  return {
    cmds,
    config,
    now,
    nowMs: now.getTime(),
    prepared: [],
    accounts: new Map(),
    decided: new Map(),
    live: [],
    loaded: {
      held: new Map(),
      holds: new Map(),
      counters: new Map(),
      batches: new Map(),
      debts: new Map(),
      chargeParts: new Map(),
      ids: { batchIds: [], entryIds: [] },
    },
    outcomes: new Array(cmds.length),
    deadLetters: [],
    pending: [],
    processedRows: [],
    settlements: [],
    refunds: [],
    rewardCounts: new Map(),
    appliedCharges: new Map(),
    chargeRefunds: new Map(),
    newBatches: 0n,
    expired: { batches: 0, amount: 0n },
    alertsFired: new Map(),
    alerts: new Map(),
  };
}

export function accountKey(userId: string, asset: string): string {
  return `${userId}\u0000${asset}`;
}

export function eventKey(queue: string, eventId: string): string {
  return `${queue}\u0000${eventId}`;
}

export function counterKey(userId: string, eventType: string, day: string): string {
  return `${userId}\u0000${eventType}\u0000${day}`;
}

/** Command `i` fails for good: its outcome, and a dead letter written with the transaction. */
export function fail(st: LedgerTx, i: number, error: PermanentJobError): void {
  const cmd = st.cmds[i]!;
  st.outcomes[i] = { ok: false, error };
  st.deadLetters.push({ queue: cmd.queue, job_id: cmd.jobId, event_id: cmd.eventId, reason_code: error.code, reason: error.message, payload: cmd.payload });
}

/** Command `i` cannot be decided yet (a refund whose charge is still in flight): nothing is written for it. */
export function postpone(st: LedgerTx, i: number, error: ChargeNotApplied): void {
  st.outcomes[i] = { ok: false, error };
}

/** Queues an effect's entries for writing; the one the command asked for carries its meta. */
export function record(st: LedgerTx, acct: AccountState, effect: Effect, meta: EntryMeta | null): PendingEntry | null {
  let own: PendingEntry | null = null;
  for (const draft of effect.entries) {
    const entry: PendingEntry = { draft, acct, meta: draft === effect.entry ? meta : null };
    if (draft === effect.entry) own = entry;
    if (draft.kind === 'expire') {
      st.expired.batches++;
      st.expired.amount -= draft.amount;
    }
    st.pending.push(entry);
  }
  return own;
}
