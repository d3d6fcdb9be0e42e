import type { AlertSent } from '../alerts/counted.ts';
import type { ConfigDocument } from '../config/document.ts';
import type { Tx } from '../db/client.ts';
import { watchAlerts } from './alerts.ts';
import { applyInOrder } from './apply-in-order.ts';
import type { CommandOutcome, LedgerCommand } from './commands.ts';
import { decideDuplicates, lockAndFindDecisions } from './lock.ts';
import { load } from './load.ts';
import { prepare, type EarlyLookups } from './prepare.ts';
import { newLedgerTx } from './state.ts';
import { write } from './write.ts';

export interface ApplyContext {
  config: ConfigDocument;
  /** The transaction's clock: expiry, default expiry dates, holds. */
  now: Date;
  /** Accounts to lock and bring up to date (expire what lapsed) even if no command touches them. */
  alsoExpire?: { userId: string; asset: string }[];
  /** Price versions and refunded charges, when the caller looked them up already (in its first round trip). */
  early?: EarlyLookups;
  /** Resolves when this transaction may take its locks: after the group-commit runs ahead of it on the same rows. */
  beforeLocks?: () => Promise<void>;
}

export interface ApplyReport {
  outcomes: CommandOutcome[];
  /** Outbox rows written (for the relay's after-commit fast path). */
  outboxRows: number;
  /** Batches this transaction expired, and what they held. */
  expired: { batches: number; amount: bigint };
  /** Balance alerts written (counted once the transaction commits). */
  alerts: AlertSent[];
}

/**
 * Applies ledger commands in one transaction, in order, in one shape (STYLE §3). Each command gets its own
 * outcome; a bad command fails alone and never sinks the others.
 *
 * 1. prepare — resolve each command against the config: account, price rule, reward rule, refunded charge;
 * 2. lock — lock the accounts in sorted order, and find the decisions already made for these events;
 * 3. decide duplicates — a replay answers noop_duplicate before any config-dependent verdict counts;
 * 4. load — open batches and debts, holds, refunded charges, reward counters, ids (one round trip);
 * 5. apply in order — close what lapsed, then each command through the domain functions;
 * 5½. watch — the balance alerts the entries cross (edge-triggered, state kept with the account);
 * 6. write — entries, allocations, batches, debts, accounts, decisions, outbox rows, money-flow deltas:
 *    set-based, pipelined.
 */
export async function applyLedgerCommands(tx: Tx, cmds: LedgerCommand[], ctx: ApplyContext): Promise<ApplyReport> {
  const st = newLedgerTx(cmds, ctx.config, ctx.now);
  if (cmds.length > 0) await prepare(tx, st, ctx.early);
  if (ctx.beforeLocks) await ctx.beforeLocks();
  await lockAndFindDecisions(tx, st, ctx.alsoExpire);
  decideDuplicates(st);
  await load(tx, st);
  applyInOrder(st);
  const alerts = watchAlerts(st);
  await write(tx, st);
  return { outcomes: st.outcomes.map((o) => o!), expired: st.expired, outboxRows: st.pending.length + alerts.length, alerts };
}
