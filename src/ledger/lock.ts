import type { Tx } from '../db/client.ts';
import type { AccountState } from '../domain/account.ts';
import { PermanentJobError } from '../errors.ts';
import type { ApplyResult } from './commands.ts';
import { accountKey, eventKey, fail, postpone, type LedgerTx } from './state.ts';
import { ChargeNotApplied } from './commands.ts';
import { lockAccounts, type AccountRow } from './sql/accounts.ts';
import { findProcessed } from './sql/processed-events.ts';

/**
 * Phase 2. Locks every account a command (or `alsoExpire`) touches, in sorted order, and finds the decisions
 * already made for these events. The lookup is pipelined behind the lock statement, so PostgreSQL runs it only
 * once the locks are held: a twin of an event committed by another transaction before we got the locks is seen.
 */
export async function lockAndFindDecisions(tx: Tx, st: LedgerTx, alsoExpire: { userId: string; asset: string }[] = []): Promise<void> {
  const pairs = new Map<string, { userId: string; asset: string }>();
  for (const p of alsoExpire) pairs.set(accountKey(p.userId, p.asset), p);
  for (const p of st.prepared) if (p.kind === 'ok') pairs.set(accountKey(p.target.userId, p.target.asset), p.target);
  if (pairs.size === 0 && st.cmds.length === 0) return;

  const find = () => findProcessed(tx, st.cmds.map((c) => c.queue), st.cmds.map((c) => c.eventId));
  let created = false;
  const [rows, first] = await Promise.all([
    pairs.size > 0 ? lockAccounts(tx, [...pairs.values()], () => (created = true)) : ([] as AccountRow[]),
    st.cmds.length > 0 ? find() : [],
  ]);
  // Accounts created just now were not locked yet when the lookup ran: a twin of one of these events may have
  // committed in between (in another process). Look again with every lock held — only then, one round trip.
  const decided = created ? await find() : first;
  for (const r of rows) {
    const acct: AccountState = {
      id: r.account_id,
      userId: r.user_id,
      asset: r.asset,
      balance: r.balance,
      debt: r.debt,
      totalGranted: r.total_granted,
      totalConsumed: r.total_consumed,
      totalExpired: r.total_expired,
      batches: [],
      debts: [],
      touched: new Set(),
      touchedDebts: new Set(),
    };
    st.accounts.set(accountKey(r.user_id, r.asset), acct);
    st.alertsFired.set(acct, r.alerts_fired);
  }
  for (const d of decided) st.decided.set(eventKey(d.queue, d.event_id), d);
}

/**
 * Phase 3. A command whose event was decided before is a replay: noop_duplicate with the original result (or
 * idempotency_conflict for another payload), before anything about the config or the ledger counts. Only the
 * others meet their preparation's verdict: a bad one fails, a refund of a charge not applied yet waits (or,
 * once its wait is over, fails unknown_charge), the rest go on to be applied (`st.live`).
 */
export function decideDuplicates(st: LedgerTx): void {
  st.cmds.forEach((cmd, i) => {
    if (answerReplay(st, i)) return;
    const p = st.prepared[i]!;
    if (p.kind === 'error') fail(st, i, p.error);
    else if (p.kind === 'pending') waitForCharge(st, i, p.chargeEventId);
    else st.live.push(i);
  });
}

/** True when command `i` replays a decided event (decided before this transaction, or earlier in it). */
export function answerReplay(st: LedgerTx, i: number): boolean {
  const cmd = st.cmds[i]!;
  const prior = st.decided.get(eventKey(cmd.queue, cmd.eventId));
  if (!prior) return false;
  if (prior.payload_hash !== cmd.payloadHash) {
    fail(st, i, new PermanentJobError('idempotency_conflict', `event_id "${cmd.eventId}" was already used with a different payload`));
  } else {
    st.outcomes[i] = { ok: true, result: duplicateResult(prior.result) };
  }
  return true;
}

function duplicateResult(original: ApplyResult): ApplyResult {
  return { ...original, outcome: 'noop_duplicate', original_outcome: original.outcome };
}

/**
 * A refund of a charge that is not applied: it may still be in flight (queued behind it, or in another worker
 * process), so the refund waits — retried like a transient fault — until `waitForChargeUntil` (wall clock: it
 * measures the job's wait, not business time). After that, or with no wait given, it fails unknown_charge.
 */
export function waitForCharge(st: LedgerTx, i: number, chargeEventId: string): void {
  const cmd = st.cmds[i]!;
  const until = cmd.op === 'refund' ? cmd.waitForChargeUntil : undefined;
  if (until !== undefined && Date.now() < until) postpone(st, i, new ChargeNotApplied(chargeEventId));
  else fail(st, i, new PermanentJobError('unknown_charge', `charge_event_id "${chargeEventId}" is not an applied charge (nothing to refund)`));
}
