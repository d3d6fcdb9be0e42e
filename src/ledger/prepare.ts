import type { ConfigDocument, PricingRule } from '../config/document.ts';
import type { Tx } from '../db/client.ts';
import { naturalDay } from '../domain/calendar.ts';
import { PermanentJobError, invalidPayload } from '../errors.ts';
import { futureProblem } from '../queues/common.ts';
import type { LedgerCommand } from './commands.ts';
import { configVersion, configVersionsAt } from './sql/config-at.ts';
import { findProcessed } from './sql/processed-events.ts';
import { findChargeEntries, type ChargeEntryRow } from './sql/refunds.ts';

export interface Target {
  userId: string;
  asset: string;
}

/** What a command needs resolved before accounts are locked: which account, which rule, which charge. */
export type Prepared =
  | { kind: 'error'; error: PermanentJobError }
  | { kind: 'no_rule' }
  | {
      kind: 'ok';
      target: Target;
      /** Charges priced by usage: the rule in force at the usage's occurred_at. */
      pricing?: PricingRule;
      reward?: { amount: bigint; dailyCap: number | undefined; day: string };
      /** Refunds: the charge's entry, or the index of the charge command earlier in this batch. */
      charge?: { entry: ChargeEntryRow } | { index: number };
    };

type RewardRule = ConfigDocument['rewards'][string];

/**
 * Resolves every command against the config and the ledger: the account it touches, the price rule in force
 * when its usage happened, the reward rule, the charge a refund gives back. Bad input fails here, alone.
 */
export async function prepareCommands(
  tx: Tx,
  cmds: LedgerCommand[],
  config: ConfigDocument,
  /** The transaction's clock: an occurred_at too far ahead of it is bad input. */
  now: Date,
  /** From priceVersions, when the caller already looked them up. */
  versionsAt?: Map<number, number>,
): Promise<Prepared[]> {
  const out: Prepared[] = new Array(cmds.length);
  const priced: number[] = [];
  const refunds: number[] = [];
  cmds.forEach((cmd, i) => {
    const future = cmd.op === 'charge' || cmd.op === 'reward' ? futureProblem(cmd.occurredAt, now) : null;
    if (future) {
      out[i] = { kind: 'error', error: invalidPayload(future) };
      return;
    }
    switch (cmd.op) {
      case 'grant':
        out[i] = config.assets[cmd.asset] ? { kind: 'ok', target: cmd } : { kind: 'error', error: invalidPayload(`unknown asset "${cmd.asset}"`) };
        return;
      case 'charge': {
        if (!config.assets[cmd.asset]) {
          out[i] = { kind: 'error', error: invalidPayload(`unknown asset "${cmd.asset}"`) };
          return;
        }
        out[i] = { kind: 'ok', target: cmd };
        if (needsPrice(cmd)) priced.push(i);
        return;
      }
      case 'reward': {
        const rule: RewardRule | undefined = config.rewards[cmd.eventType];
        if (!rule) out[i] = { kind: 'no_rule' };
        else if (!rule.versions.includes(cmd.eventVersion)) {
          out[i] = {
            kind: 'error',
            error: new PermanentJobError('unsupported_version', `event_version "${cmd.eventVersion}" of ${cmd.eventType} is not one of ${rule.versions.join(', ')}`),
          };
        } else {
          out[i] = {
            kind: 'ok',
            target: { userId: cmd.userId, asset: rule.asset },
            reward: { amount: BigInt(rule.amount), dailyCap: rule.daily_cap, day: naturalDay(cmd.occurredAt.getTime(), config.timezone) },
          };
        }
        return;
      }
      case 'refund':
        refunds.push(i);
        return;
    }
  });

  if (priced.length > 0) {
    const versions = versionsAt ?? (await priceVersions(tx, cmds));
    for (const i of priced) {
      const cmd = cmds[i] as Extract<LedgerCommand, { op: 'charge' }>;
      const doc = (await configVersion(tx, versions.get(i)!)) ?? config;
      const rule = doc.pricing[cmd.asset]?.[cmd.sourceType];
      out[i] = rule
        ? { kind: 'ok', target: cmd, pricing: rule }
        : { kind: 'error', error: invalidPayload(`no pricing for source_type "${cmd.sourceType}" on asset "${cmd.asset}" and no amount given`) };
    }
  }

  if (refunds.length > 0) await prepareRefunds(tx, cmds, refunds, out);
  return out;
}

async function prepareRefunds(tx: Tx, cmds: LedgerCommand[], refunds: number[], out: Prepared[]): Promise<void> {
  const ids = refunds.map((i) => (cmds[i] as Extract<LedgerCommand, { op: 'refund' }>).chargeEventId);
  const entries = new Map((await findChargeEntries(tx, ids)).map((e) => [e.event_id, e]));
  const missing: number[] = [];
  for (const i of refunds) {
    const cmd = cmds[i] as Extract<LedgerCommand, { op: 'refund' }>;
    const entry = entries.get(cmd.chargeEventId);
    if (entry) {
      out[i] = { kind: 'ok', target: { userId: entry.user_id, asset: entry.asset }, charge: { entry } };
      continue;
    }
    // The charge may be in this very batch, ahead of its refund.
    const index = cmds.findIndex((c, j) => j < i && c.op === 'charge' && c.queue === cmd.queue && c.eventId === cmd.chargeEventId);
    if (index >= 0) {
      const c = cmds[index] as Extract<LedgerCommand, { op: 'charge' }>;
      out[i] = { kind: 'ok', target: { userId: c.userId, asset: c.asset }, charge: { index } };
    } else missing.push(i);
  }
  if (missing.length === 0) return;
  const decided = new Set(
    (await findProcessed(tx, missing.map((i) => cmds[i]!.queue), missing.map((i) => (cmds[i] as Extract<LedgerCommand, { op: 'refund' }>).chargeEventId))).map(
      (p) => p.event_id,
    ),
  );
  for (const i of missing) {
    const id = (cmds[i] as Extract<LedgerCommand, { op: 'refund' }>).chargeEventId;
    out[i] = {
      kind: 'error',
      error: decided.has(id)
        ? new PermanentJobError('refund_exceeds_charge', `charge "${id}" charged nothing; there is nothing to refund`)
        : invalidPayload(`charge_event_id "${id}" is not an applied charge (refund only after the charge was applied)`),
    };
  }
}

/** A charge priced by the rule in force at its occurred_at (a hold settled without usage or amount is charged its estimate). */
function needsPrice(cmd: LedgerCommand): cmd is Extract<LedgerCommand, { op: 'charge' }> {
  return cmd.op === 'charge' && cmd.amount === null && !(cmd.holdId && cmd.usage === null);
}

/**
 * For every charge priced by usage, by command index: the config version in force at its occurred_at. Needs no
 * lock or config, so a transaction can look it up in its first round trip (ApplyContext.versionsAt).
 */
export async function priceVersions(tx: Tx, cmds: LedgerCommand[]): Promise<Map<number, number>> {
  const priced = cmds.flatMap((c, i) => (needsPrice(c) ? [i] : []));
  const versions = await configVersionsAt(tx, priced.map((i) => (cmds[i] as Extract<LedgerCommand, { op: 'charge' }>).occurredAt));
  return new Map(priced.map((i, k) => [i, versions[k]!]));
}
