import type { PricingRule } from '../config/document.ts';
import { LimitError, consume, expireLapsed, grant, type AccountState } from '../domain/account.ts';
import { PricingError, priceUsage, type Usage } from '../domain/pricing.ts';
import { PermanentJobError, invalidPayload } from '../errors.ts';
import { ChargeNotApplied, type ApplyResult, type ChargeCommand, type LedgerCommand, type RewardCommand } from './commands.ts';
import { answerReplay, waitForCharge } from './lock.ts';
import { applyAdjust } from './adjust.ts';
import { applyRefund } from './refund.ts';
import { accountKey, counterKey, eventKey, fail, record, type EntryMeta, type LedgerTx, type Prepared } from './state.ts';
import { PROVISIONAL } from './write.ts';

type Ready = Extract<Prepared, { kind: 'ok' }>;

const DAY_MS = 86_400_000;

/**
 * Phase 5. First closes whatever lapsed in every locked account (the sweep's work, and so entries stay in time
 * order), then applies the commands one by one, in order, with the domain functions. Each gets its own outcome;
 * a bad command fails alone — the domain refuses before changing anything — and never sinks the others.
 */
export function applyInOrder(st: LedgerTx): void {
  for (const acct of st.accounts.values()) record(st, acct, { entries: expireLapsed(acct, st.nowMs), entry: null }, null);
  for (const i of st.live) applyCommand(st, i);
}

function applyCommand(st: LedgerTx, i: number): void {
  if (answerReplay(st, i)) return; // the same event earlier in this transaction
  const cmd = st.cmds[i]!;
  const prep = st.prepared[i] as Ready | { kind: 'no_rule' };
  let result: ApplyResult;
  try {
    result = prep.kind === 'no_rule' ? { outcome: 'noop_no_rule', transaction_id: null, amount: 0 } : applyOp(st, cmd, prep, i);
  } catch (err) {
    if (err instanceof PermanentJobError) fail(st, i, err);
    else if (err instanceof LimitError) fail(st, i, invalidPayload(err.message));
    else if (err instanceof ChargeNotApplied && cmd.op === 'refund') waitForCharge(st, i, cmd.chargeEventId);
    else throw err;
    return;
  }
  st.outcomes[i] = { ok: true, result };
  const row = { queue: cmd.queue, event_id: cmd.eventId, payload_hash: cmd.payloadHash, result };
  st.decided.set(eventKey(cmd.queue, cmd.eventId), row);
  st.processedRows.push(row);
}

function applyOp(st: LedgerTx, cmd: LedgerCommand, prep: Ready, i: number): ApplyResult {
  const acct = st.accounts.get(accountKey(prep.target.userId, prep.target.asset))!;
  switch (cmd.op) {
    case 'grant':
      return applyGrant(st, acct, cmd.amount, cmd.expiresAt, { eventId: cmd.eventId, sourceType: cmd.source, sourceId: cmd.sourceId, usage: null, description: cmd.description, occurredAt: null });
    case 'reward':
      return applyReward(st, cmd, prep, acct);
    case 'charge':
      return cmd.holdId ? settleHold(st, cmd, prep, acct, i) : applyCharge(st, cmd, prep, acct, i);
    case 'refund':
      return applyRefund(st, cmd, prep, acct);
    case 'adjust':
      return applyAdjust(st, cmd, acct);
  }
}

function applyGrant(st: LedgerTx, acct: AccountState, amount: bigint, expiresAtIso: string | null | undefined, meta: EntryMeta): ApplyResult {
  const days = Object.hasOwn(st.config.assets, acct.asset) ? st.config.assets[acct.asset]!.default_expiry_days : null;
  const expiresAt =
    expiresAtIso === undefined ? (days === null ? null : st.nowMs + days * DAY_MS) : expiresAtIso === null ? null : Date.parse(expiresAtIso);
  const batchId = PROVISIONAL + st.newBatches;
  const effect = grant(acct, { amount, expiresAt, source: meta.sourceType, sourceId: meta.sourceId, batchId, entryId: 0n }, st.nowMs);
  st.newBatches++;
  const entry = record(st, acct, effect, meta)!;
  const result: ApplyResult = { outcome: 'applied', transaction_id: entry, amount: Number(amount), balance_after: Number(acct.balance) };
  // Expired on arrival (expires_at not after now): recorded, then expired at once; nothing spendable came of it.
  if (effect.entry!.batch!.expired) result.expired = Number(amount);
  return result;
}

function applyReward(st: LedgerTx, cmd: RewardCommand, prep: Ready, acct: AccountState): ApplyResult {
  const { amount, dailyCap, day } = prep.reward!;
  const key = counterKey(cmd.userId, cmd.eventType, day);
  const count = st.loaded.counters.get(key) ?? 0;
  if (dailyCap !== undefined && count >= dailyCap) {
    return { outcome: 'noop_reward_daily_cap', transaction_id: null, amount: 0, balance_after: Number(acct.balance) };
  }
  const result = applyGrant(st, acct, amount, undefined, {
    eventId: cmd.eventId,
    sourceType: 'reward',
    sourceId: cmd.sourceRefId,
    usage: null,
    description: cmd.eventType,
    occurredAt: cmd.occurredAt,
  });
  st.loaded.counters.set(key, count + 1);
  const delta = st.rewardCounts.get(key) ?? { user_id: cmd.userId, event_type: cmd.eventType, day, granted: 0 };
  delta.granted++;
  st.rewardCounts.set(key, delta);
  return result;
}

function chargeMeta(cmd: ChargeCommand): EntryMeta {
  return { eventId: cmd.eventId, sourceType: cmd.sourceType, sourceId: cmd.sourceId, usage: cmd.usage, description: cmd.description, occurredAt: cmd.occurredAt };
}

function price(rule: PricingRule, usage: Usage | undefined): bigint {
  try {
    return priceUsage(rule, usage);
  } catch (err) {
    if (err instanceof PricingError) throw invalidPayload(err.message);
    throw err;
  }
}

function applyCharge(st: LedgerTx, cmd: ChargeCommand, prep: Ready, acct: AccountState, i: number): ApplyResult {
  const amount = cmd.amount ?? price(prep.pricing!, cmd.usage ?? undefined);
  if (amount === 0n) {
    const balance = Number(acct.balance);
    return { outcome: 'noop_free', transaction_id: null, amount: 0, balance_before: balance, balance_after: balance };
  }
  // Guarded charges see the holds: available = balance − active holds.
  const effect = consume(acct, amount, cmd.policy, st.loaded.held.get(acct.id) ?? 0n, st.nowMs);
  const entry = record(st, acct, effect, chargeMeta(cmd));
  if (!entry) {
    const balance = Number(acct.balance);
    return { outcome: 'rejected_insufficient', transaction_id: null, amount: Number(amount), balance_before: balance, balance_after: balance };
  }
  st.appliedCharges.set(i, entry);
  return { outcome: 'applied', transaction_id: entry, amount: Number(amount), balance_before: Number(entry.draft.balanceBefore), balance_after: Number(entry.draft.balanceAfter) };
}

/**
 * Settles a hold with the actual cost: a consume of exactly that, post-paid. What the hold reserved beyond
 * it is simply no longer held; what exceeds it may overdraw. Without usage or amount (a stream that ended
 * with no final usage) the actual cost is the hold's estimate.
 */
function settleHold(st: LedgerTx, cmd: ChargeCommand, prep: Ready, acct: AccountState, i: number): ApplyResult {
  const hold = st.loaded.holds.get(cmd.holdId!);
  if (!hold) throw new PermanentJobError('unknown_hold', `hold "${cmd.holdId}" does not exist`);
  if (hold.user_id !== cmd.userId || hold.asset !== cmd.asset) {
    throw invalidPayload(`hold "${hold.hold_id}" belongs to ${hold.user_id}/${hold.asset}, not ${cmd.userId}/${cmd.asset}`);
  }
  if (hold.status === 'settled') {
    throw new PermanentJobError('unknown_hold', `hold "${hold.hold_id}" was already settled by event "${hold.settle_event_id}"`);
  }
  const amount = cmd.amount ?? (cmd.usage === null ? hold.amount : price(prep.pricing!, cmd.usage));
  const balance = Number(acct.balance);
  // Consumed first: a charge the ledger refuses (too large) leaves the hold as it was.
  const entry = amount === 0n ? null : record(st, acct, consume(acct, amount, 'postpaid', 0n, st.nowMs), chargeMeta(cmd));
  const holdInfo = { hold_id: hold.hold_id, held: Number(hold.amount), hold_status_before: hold.status };
  if (hold.status === 'active' && hold.expires_at.getTime() > st.nowMs) st.loaded.held.set(acct.id, (st.loaded.held.get(acct.id) ?? 0n) - hold.amount);
  hold.status = 'settled';
  hold.settle_event_id = cmd.eventId;
  st.settlements.push({ hold_id: hold.hold_id, settle_event_id: cmd.eventId, settled_amount: String(amount) });
  if (!entry) return { outcome: 'noop_free', transaction_id: null, amount: 0, balance_before: balance, balance_after: balance, ...holdInfo };
  st.appliedCharges.set(i, entry);
  return {
    outcome: 'applied',
    transaction_id: entry,
    amount: Number(amount),
    balance_before: Number(entry.draft.balanceBefore),
    balance_after: Number(entry.draft.balanceAfter),
    ...holdInfo,
  };
}
