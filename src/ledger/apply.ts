import type { ConfigDocument } from '../config/document.ts';
import type { Tx } from '../db/client.ts';
import { consume, expireLapsed, grant, restore, type AccountState, type BatchState } from '../domain/account.ts';
import { PricingError, priceUsage } from '../domain/pricing.ts';
import { PermanentJobError, invalidPayload } from '../errors.ts';
import type { ApplyResult, ChargeCommand, CommandOutcome, LedgerCommand, RefundCommand, RewardCommand } from './commands.ts';
import { prepareCommands, type Prepared } from './prepare.ts';
import { buildRefundState, type ChargeRefundState } from './refund-state.ts';
import { lockAccounts, type AccountRow } from './sql/accounts.ts';
import { allocateIds, loadOpenBatches } from './sql/batches.ts';
import { recordDeadLetters, type DeadLetter } from './sql/dead-letters.ts';
import { heldByAccount, loadHolds, type HoldRow } from './sql/holds.ts';
import { findProcessed, type ProcessedRow } from './sql/processed-events.ts';
import { loadBatchesById, loadChargeParts } from './sql/refunds.ts';
import { loadRewardCounters, type RewardCounterRow } from './sql/reward-counters.ts';
import { PROVISIONAL, writeChanges, type EntryMeta, type PendingEntry, type PendingRefund } from './write.ts';
import type { HoldSettlement } from './sql/holds.ts';

export interface ApplyContext {
  config: ConfigDocument;
  /** The transaction's clock: expiry, default expiry dates, holds. */
  now: Date;
  /** Accounts to lock and bring up to date (expire what lapsed) even if no command touches them. */
  alsoExpire?: { userId: string; asset: string }[];
  /** Config versions in force at the `occurred_at` of charges, by command index, already looked up. */
  versionsAt?: Map<number, number>;
}

export interface ApplyReport {
  outcomes: CommandOutcome[];
  /** Outbox rows written (for the relay's after-commit fast path). */
  outboxRows: number;
  /** Batches this transaction expired, and what they held. */
  expired: { batches: number; amount: bigint };
}

const DAY_MS = 86_400_000;

function accountKey(userId: string, asset: string): string {
  return `${userId}\u0000${asset}`;
}

function eventKey(queue: string, eventId: string): string {
  return `${queue}\u0000${eventId}`;
}

function toState(row: AccountRow): AccountState {
  return {
    id: row.account_id,
    userId: row.user_id,
    asset: row.asset,
    balance: row.balance,
    debt: row.debt,
    totalGranted: row.total_granted,
    totalConsumed: row.total_consumed,
    totalExpired: row.total_expired,
    batches: [],
    touched: new Set(),
  };
}

function duplicateResult(original: ApplyResult): ApplyResult {
  return { ...original, outcome: 'noop_duplicate', original_outcome: original.outcome };
}

function price(rule: Parameters<typeof priceUsage>[0], usage: Parameters<typeof priceUsage>[1]): bigint {
  try {
    return priceUsage(rule, usage);
  } catch (err) {
    if (err instanceof PricingError) throw invalidPayload(err.message);
    throw err;
  }
}

/**
 * Applies ledger commands in one transaction, in order, with one shape: resolve rules and targets → lock
 * accounts (sorted) → find already-decided events → load open batches, holds, refund state and reward
 * counters → compute every effect with the domain functions → write entries, allocations, batches,
 * accounts, decisions and outbox rows with set-based statements. Each command gets its own outcome; a bad
 * command fails alone and never sinks the others.
 */
export async function applyLedgerCommands(tx: Tx, cmds: LedgerCommand[], ctx: ApplyContext): Promise<ApplyReport> {
  const outcomes: (CommandOutcome | undefined)[] = new Array(cmds.length);
  const deadLetters: DeadLetter[] = [];
  const fail = (i: number, error: PermanentJobError) => {
    const cmd = cmds[i]!;
    outcomes[i] = { ok: false, error };
    deadLetters.push({ queue: cmd.queue, job_id: cmd.jobId, event_id: cmd.eventId, reason_code: error.code, reason: error.message, payload: cmd.payload });
  };

  const prepared: Prepared[] = cmds.length > 0 ? await prepareCommands(tx, cmds, ctx.config, ctx.now, ctx.versionsAt) : [];
  const live: number[] = [];
  prepared.forEach((p, i) => (p.kind === 'error' ? fail(i, p.error) : live.push(i)));

  const pairs = new Map<string, { userId: string; asset: string }>();
  for (const p of ctx.alsoExpire ?? []) pairs.set(accountKey(p.userId, p.asset), p);
  for (const i of live) {
    const p = prepared[i]!;
    if (p.kind === 'ok') pairs.set(accountKey(p.target.userId, p.target.asset), p.target);
  }

  const nowMs = ctx.now.getTime();
  const accounts = new Map<string, AccountState>();
  const decided = new Map<string, ProcessedRow>();
  const pending: PendingEntry[] = [];
  const held = new Map<bigint, bigint>();
  const holds = new Map<string, HoldRow>();
  const counters = new Map<string, number>();
  const batchById = new Map<bigint, BatchState>();
  const chargeParts = new Map<bigint, Awaited<ReturnType<typeof loadChargeParts>>[number]>();
  // Batches a refund gives back to that were not open (burned to zero, or expired): loaded on demand.
  const closedBatches = new Map<bigint, BatchState>();
  const expired = { batches: 0, amount: 0n };
  let ids: { batchIds: bigint[]; entryIds: bigint[] } | undefined;

  if (live.length > 0 || pairs.size > 0) {
    const find = () => findProcessed(tx, live.map((i) => cmds[i]!.queue), live.map((i) => cmds[i]!.eventId));
    let created = false;
    const [rows, first] = await Promise.all([
      pairs.size > 0 ? lockAccounts(tx, [...pairs.values()], () => (created = true)) : [],
      find(),
    ]);
    // Accounts created just now were not locked yet when the lookup ran: a twin of one of these events may have
    // committed in between (in another process). Look again with every lock held — only then, one round trip.
    const processed = created ? await find() : first;
    for (const r of rows) accounts.set(accountKey(r.user_id, r.asset), toState(r));
    for (const p of processed) decided.set(eventKey(p.queue, p.event_id), p);
    const byId = new Map([...accounts.values()].map((a) => [a.id, a]));
    const holdIds = live.flatMap((i) => {
      const c = cmds[i]!;
      return c.op === 'charge' && c.holdId ? [c.holdId] : [];
    });
    const chargeEntryIds = live.flatMap((i) => {
      const p = prepared[i]!;
      return p.kind === 'ok' && p.charge && 'entry' in p.charge ? [p.charge.entry.entry_id] : [];
    });
    const counterKeys = live.flatMap((i) => {
      const p = prepared[i]!;
      return p.kind === 'ok' && p.reward ? [{ user_id: p.target.userId, event_type: (cmds[i] as RewardCommand).eventType, day: p.reward.day }] : [];
    });
    // Ids for what this transaction will write, drawn after the locks (an account's entries then number in
    // commit order): one entry per command, one batch per grant, reward or refund; writeChanges tops up.
    const idsWanted = {
      batches: live.filter((i) => cmds[i]!.op !== 'charge').length,
      entries: live.length,
    };
    // Issued together after the locks: postgres.js pipelines them on the transaction's connection.
    const [open, heldRows, holdRows, partRows, counterRows, drawn] = await Promise.all([
      byId.size > 0 ? loadOpenBatches(tx, [...byId.keys()]) : [],
      heldByAccount(tx, [...byId.keys()], ctx.now),
      holdIds.length > 0 ? loadHolds(tx, holdIds) : [],
      chargeEntryIds.length > 0 ? loadChargeParts(tx, chargeEntryIds) : [],
      loadRewardCounters(tx, counterKeys),
      allocateIds(tx, idsWanted.batches, idsWanted.entries),
    ]);
    ids = drawn;
    for (const b of open) {
      const state: BatchState = {
        id: b.batch_id,
        amount: b.amount,
        remaining: b.remaining,
        expiresAt: b.expires_at ? b.expires_at.getTime() : null,
        expired: false,
        source: b.source,
        sourceId: b.source_id,
        grantEntryId: b.grant_entry_id,
        isNew: false,
      };
      byId.get(b.account_id)!.batches.push(state);
      batchById.set(state.id, state);
    }
    for (const [id, amount] of heldRows) held.set(id, amount);
    for (const h of holdRows) holds.set(h.hold_id, h);
    for (const r of partRows) chargeParts.set(BigInt(r.entry_id), r);
    for (const c of counterRows as RewardCounterRow[]) counters.set(`${c.user_id}\u0000${c.event_type}\u0000${c.day}`, c.granted);
    const needClosed = [...chargeParts.values()].flatMap((r) => r.allocations.map((a) => BigInt(a.batch_id))).filter((id) => !batchById.has(id));
    if (needClosed.length > 0) {
      for (const b of await loadBatchesById(tx, needClosed)) {
        closedBatches.set(b.batch_id, {
          id: b.batch_id,
          amount: b.amount,
          remaining: b.remaining,
          expiresAt: b.expires_at ? b.expires_at.getTime() : null,
          expired: b.expired,
          source: b.source,
          sourceId: b.source_id,
          grantEntryId: b.grant_entry_id,
          isNew: false,
        });
      }
    }
    // Expiry is exact at charge time: nothing past expires_at is ever burned, swept or not.
    for (const acct of accounts.values()) {
      for (const draft of expireLapsed(acct, nowMs)) {
        pending.push({ draft, acct, meta: null });
        expired.batches++;
        expired.amount -= draft.amount;
      }
    }
  }

  let provisional = 0n;
  const processedRows: ProcessedRow[] = [];
  const settlements: HoldSettlement[] = [];
  const refunds: PendingRefund[] = [];
  const rewardCounts = new Map<string, { user_id: string; event_type: string; day: string; granted: number }>();
  const appliedCharges = new Map<number, PendingEntry>();
  const refundStates = new Map<string, ChargeRefundState>();

  for (const i of live) {
    const cmd = cmds[i]!;
    const prep = prepared[i]!;
    const key = eventKey(cmd.queue, cmd.eventId);
    const prior = decided.get(key);
    if (prior) {
      if (prior.payload_hash !== cmd.payloadHash) {
        fail(i, new PermanentJobError('idempotency_conflict', `event_id "${cmd.eventId}" was already used with a different payload`));
      } else {
        outcomes[i] = { ok: true, result: duplicateResult(prior.result) };
      }
      continue;
    }
    let result: ApplyResult;
    try {
      if (prep.kind === 'no_rule') result = { outcome: 'noop_no_rule', transaction_id: null, amount: 0 };
      else if (prep.kind !== 'ok') continue;
      else {
        const acct = accounts.get(accountKey(prep.target.userId, prep.target.asset))!;
        switch (cmd.op) {
          case 'grant':
            result = applyGrant(acct, cmd.amount, cmd.expiresAt, { eventId: cmd.eventId, sourceType: cmd.source, sourceId: cmd.sourceId, usage: null, description: cmd.description, occurredAt: null });
            break;
          case 'reward':
            result = applyReward(cmd, prep, acct);
            break;
          case 'charge':
            result = cmd.holdId ? settleHold(cmd, prep, acct, i) : applyCharge(cmd, prep, acct, i);
            break;
          case 'refund':
            result = applyRefund(cmd, prep, acct);
            break;
        }
      }
    } catch (err) {
      if (err instanceof PermanentJobError) {
        fail(i, err);
        continue;
      }
      throw err;
    }
    outcomes[i] = { ok: true, result };
    const row = { queue: cmd.queue, event_id: cmd.eventId, payload_hash: cmd.payloadHash, result };
    decided.set(key, row);
    processedRows.push(row);
  }

  function applyGrant(acct: AccountState, amount: bigint, expiresAtIso: string | null | undefined, meta: EntryMeta): ApplyResult {
    const days = ctx.config.assets[acct.asset]?.default_expiry_days ?? null;
    const expiresAt =
      expiresAtIso === undefined ? (days === null ? null : nowMs + days * DAY_MS) : expiresAtIso === null ? null : Date.parse(expiresAtIso);
    const draft = grant(acct, {
      amount,
      expiresAt,
      source: meta.sourceType,
      sourceId: meta.sourceId,
      batchId: PROVISIONAL + provisional++,
      entryId: 0n, // set once entry ids are allocated
    });
    const entry: PendingEntry = { draft, acct, meta };
    pending.push(entry);
    return { outcome: 'applied', transaction_id: entry, amount: Number(amount), balance_after: Number(draft.balanceAfter) };
  }

  function applyReward(cmd: RewardCommand, prep: Extract<Prepared, { kind: 'ok' }>, acct: AccountState): ApplyResult {
    const { amount, dailyCap, day } = prep.reward!;
    const key = `${cmd.userId}\u0000${cmd.eventType}\u0000${day}`;
    const count = counters.get(key) ?? 0;
    if (dailyCap !== undefined && count >= dailyCap) {
      return { outcome: 'noop_reward_daily_cap', transaction_id: null, amount: 0, balance_after: Number(acct.balance) };
    }
    counters.set(key, count + 1);
    const delta = rewardCounts.get(key) ?? { user_id: cmd.userId, event_type: cmd.eventType, day, granted: 0 };
    delta.granted++;
    rewardCounts.set(key, delta);
    return applyGrant(acct, amount, undefined, {
      eventId: cmd.eventId,
      sourceType: 'reward',
      sourceId: cmd.sourceRefId,
      usage: null,
      description: cmd.eventType,
      occurredAt: cmd.occurredAt,
    });
  }

  function chargeMeta(cmd: ChargeCommand): EntryMeta {
    return { eventId: cmd.eventId, sourceType: cmd.sourceType, sourceId: cmd.sourceId, usage: cmd.usage, description: cmd.description, occurredAt: cmd.occurredAt };
  }

  function applyCharge(cmd: ChargeCommand, prep: Extract<Prepared, { kind: 'ok' }>, acct: AccountState, i: number): ApplyResult {
    const amount = cmd.amount ?? price(prep.pricing!, cmd.usage ?? undefined);
    const balance = Number(acct.balance);
    if (amount === 0n) {
      return { outcome: 'noop_free', transaction_id: null, amount: 0, balance_before: balance, balance_after: balance };
    }
    // Guarded charges see the holds: available = balance − active holds.
    const draft = consume(acct, amount, cmd.policy, held.get(acct.id) ?? 0n);
    if (!draft) {
      return { outcome: 'rejected_insufficient', transaction_id: null, amount: Number(amount), balance_before: balance, balance_after: balance };
    }
    const entry: PendingEntry = { draft, acct, meta: chargeMeta(cmd) };
    pending.push(entry);
    appliedCharges.set(i, entry);
    return { outcome: 'applied', transaction_id: entry, amount: Number(amount), balance_before: Number(draft.balanceBefore), balance_after: Number(draft.balanceAfter) };
  }

  /**
   * Settles a hold with the actual cost: a consume of exactly that, post-paid. What the hold reserved beyond
   * it is simply no longer held; what exceeds it may overdraw. Without usage or amount (a stream that ended
   * with no final usage) the actual cost is the hold's estimate.
   */
  function settleHold(cmd: ChargeCommand, prep: Extract<Prepared, { kind: 'ok' }>, acct: AccountState, i: number): ApplyResult {
    const hold = holds.get(cmd.holdId!);
    if (!hold) throw new PermanentJobError('unknown_hold', `hold "${cmd.holdId}" does not exist`);
    if (hold.user_id !== cmd.userId || hold.asset !== cmd.asset) {
      throw invalidPayload(`hold "${hold.hold_id}" belongs to ${hold.user_id}/${hold.asset}, not ${cmd.userId}/${cmd.asset}`);
    }
    if (hold.status === 'settled') {
      throw new PermanentJobError('unknown_hold', `hold "${hold.hold_id}" was already settled by event "${hold.settle_event_id}"`);
    }
    const amount = cmd.amount ?? (cmd.usage === null ? hold.amount : price(prep.pricing!, cmd.usage));
    if (hold.status === 'active' && hold.expires_at.getTime() > nowMs) held.set(acct.id, (held.get(acct.id) ?? 0n) - hold.amount);
    const holdInfo = { hold_id: hold.hold_id, held: Number(hold.amount), hold_status_before: hold.status };
    hold.status = 'settled';
    hold.settle_event_id = cmd.eventId;
    settlements.push({ hold_id: hold.hold_id, settle_event_id: cmd.eventId, settled_amount: String(amount) });
    const balance = Number(acct.balance);
    if (amount === 0n) return { outcome: 'noop_free', transaction_id: null, amount: 0, balance_before: balance, balance_after: balance, ...holdInfo };
    const draft = consume(acct, amount, 'postpaid')!;
    const entry: PendingEntry = { draft, acct, meta: chargeMeta(cmd) };
    pending.push(entry);
    appliedCharges.set(i, entry);
    return {
      outcome: 'applied',
      transaction_id: entry,
      amount: Number(amount),
      balance_before: Number(draft.balanceBefore),
      balance_after: Number(draft.balanceAfter),
      ...holdInfo,
    };
  }

  function applyRefund(cmd: RefundCommand, prep: Extract<Prepared, { kind: 'ok' }>, acct: AccountState): ApplyResult {
    let state = refundStates.get(cmd.chargeEventId);
    if (!state) {
      const ref = prep.charge!;
      const built = buildRefundState(ref, { chargeParts, batchById, appliedCharges, cmds, loadedClosed: closedBatches });
      if (!built) throw new PermanentJobError('refund_exceeds_charge', `charge "${cmd.chargeEventId}" charged nothing; there is nothing to refund`);
      state = built;
      refundStates.set(cmd.chargeEventId, state);
    }
    const left = state.sources.reduce((s, x) => s + x.left, 0n);
    const requested = cmd.amount ?? left;
    if (left === 0n || requested > left) {
      throw new PermanentJobError('refund_exceeds_charge', `refund of ${requested} exceeds the ${left} left refundable of charge "${cmd.chargeEventId}"`);
    }
    const plan = state.take(requested, nowMs);
    const restorable = plan.filter((p) => p.restorable);
    const restored = restorable.reduce((s, p) => s + p.amount, 0n);
    const balance = Number(acct.balance);
    let entry: PendingEntry | null = null;
    if (restored > 0n) {
      const draft = restore(acct, restorable, { id: PROVISIONAL + provisional++, source: 'refund', sourceId: cmd.chargeEventId });
      entry = {
        draft,
        acct,
        meta: {
          eventId: cmd.eventId,
          sourceType: state.sourceType,
          sourceId: cmd.chargeEventId,
          usage: state.model ? { model: state.model } : null,
          description: cmd.reason,
          // Attributed to when the usage happened, so usage windows count charges net of their refunds.
          occurredAt: state.occurredAt,
        },
      };
      pending.push(entry);
    }
    refunds.push({ eventId: cmd.eventId, charge: state.charge, requested, restored, entry, parts: plan });
    return {
      outcome: 'applied',
      transaction_id: entry,
      amount: Number(restored),
      requested: Number(requested),
      balance_before: balance,
      balance_after: Number(acct.balance),
    };
  }

  // Pipelined on the transaction's connection.
  await Promise.all([
    writeChanges(tx, { pending, accounts: accounts.values(), processedRows, newBatchCount: provisional, settlements, refunds, rewardCounts: [...rewardCounts.values()], ids }),
    deadLetters.length > 0 ? recordDeadLetters(tx, dedupeByJob(deadLetters)) : undefined,
  ]);
  return { outcomes: outcomes.map((o) => o!), expired, outboxRows: pending.length };
}

function dedupeByJob(rows: DeadLetter[]): DeadLetter[] {
  return [...new Map(rows.map((r) => [`${r.queue}\u0000${r.job_id}`, r])).values()];
}
