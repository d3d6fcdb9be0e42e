import type { ConfigDocument } from '../config/document.ts';
import type { Tx } from '../db/client.ts';
import { naturalDay } from '../domain/calendar.ts';
import { PermanentJobError, invalidPayload } from '../errors.ts';
import { futureProblem } from '../queues/common.ts';
import type { ChargeCommand, LedgerCommand, RefundCommand, RewardCommand } from './commands.ts';
import type { LedgerTx, Prepared } from './state.ts';
import { configVersion, configVersionsAt } from './sql/config-at.ts';
import { findCharges, type ChargeLookup } from './sql/refunds.ts';

/** Lookups that need neither locks nor config, so a transaction can make them in its first round trip. */
export interface EarlyLookups {
  /** For every charge priced by usage, by command index: the config version in force at its occurred_at. */
  versionsAt: Map<number, number>;
  /** The charges refunds name, by event id. */
  charges: Map<string, ChargeLookup>;
}

/** A charge priced by the rule in force at its occurred_at (a hold settled without usage or amount is charged its estimate). */
function needsPrice(cmd: LedgerCommand): cmd is ChargeCommand {
  return cmd.op === 'charge' && cmd.amount === null && !(cmd.holdId && cmd.usage === null);
}

export async function lookUpEarly(tx: Tx, cmds: LedgerCommand[]): Promise<EarlyLookups> {
  const priced = cmds.flatMap((c, i) => (needsPrice(c) ? [i] : []));
  const chargeIds = [...new Set(cmds.flatMap((c) => (c.op === 'refund' ? [c.chargeEventId] : [])))];
  // Pipelined on the transaction's connection.
  const [versions, charges] = await Promise.all([
    configVersionsAt(tx, priced.map((i) => (cmds[i] as ChargeCommand).occurredAt)),
    findCharges(tx, chargeIds),
  ]);
  return { versionsAt: new Map(priced.map((i, k) => [i, versions[k]!])), charges: new Map(charges.map((c) => [c.event_id, c])) };
}

/**
 * Phase 1. Resolves every command against the config and the ledger: the account it touches, the price rule in
 * force when its usage happened, the reward rule, the charge a refund gives back.
 */
export async function prepare(tx: Tx, st: LedgerTx, early?: EarlyLookups): Promise<void> {
  const found = early ?? (await lookUpEarly(tx, st.cmds));
  st.prepared = st.cmds.map((cmd, i) => prepareOne(st, cmd, i, found));
  for (const [i, version] of found.versionsAt) {
    if (st.prepared[i]!.kind !== 'ok') continue;
    const cmd = st.cmds[i] as ChargeCommand;
    const doc = (await configVersion(tx, version)) ?? st.config;
    const rule = Object.hasOwn(doc.pricing, cmd.asset) && Object.hasOwn(doc.pricing[cmd.asset]!, cmd.sourceType) ? doc.pricing[cmd.asset]![cmd.sourceType] : undefined;
    st.prepared[i] = rule
      ? { kind: 'ok', target: cmd, pricing: rule }
      : { kind: 'error', error: invalidPayload(`no pricing for source_type "${cmd.sourceType}" on asset "${cmd.asset}" and no amount given`) };
  }
}

function prepareOne(st: LedgerTx, cmd: LedgerCommand, i: number, found: EarlyLookups): Prepared {
  const future = cmd.op === 'charge' || cmd.op === 'reward' ? futureProblem(cmd.occurredAt, st.now) : null;
  if (future) return { kind: 'error', error: invalidPayload(future) };
  switch (cmd.op) {
    case 'grant':
    case 'charge':
    case 'adjust':
      return hasAsset(st.config, cmd.asset) ? { kind: 'ok', target: cmd } : { kind: 'error', error: invalidPayload(`unknown asset "${cmd.asset}"`) };
    case 'reward':
      return prepareReward(st.config, cmd);
    case 'refund':
      return prepareRefund(st.cmds, cmd, i, found.charges.get(cmd.chargeEventId));
  }
}

function hasAsset(config: ConfigDocument, asset: string): boolean {
  return Object.hasOwn(config.assets, asset);
}

/** A missing or blank event_version means the newest version the rule lists: the last one. */
function prepareReward(config: ConfigDocument, cmd: RewardCommand): Prepared {
  const rule = Object.hasOwn(config.rewards, cmd.eventType) ? config.rewards[cmd.eventType] : undefined;
  if (!rule) return { kind: 'no_rule' };
  const version = cmd.eventVersion === null || cmd.eventVersion.trim() === '' ? rule.versions.at(-1)! : cmd.eventVersion;
  if (!rule.versions.includes(version)) {
    return { kind: 'error', error: new PermanentJobError('unsupported_version', `event_version "${version}" of ${cmd.eventType} is not one of ${rule.versions.join(', ')}`) };
  }
  return {
    kind: 'ok',
    target: { userId: cmd.userId, asset: rule.asset },
    reward: { amount: BigInt(rule.amount), dailyCap: rule.daily_cap, day: naturalDay(cmd.occurredAt.getTime(), config.timezone) },
  };
}

function prepareRefund(cmds: LedgerCommand[], cmd: RefundCommand, i: number, found: ChargeLookup | undefined): Prepared {
  if (found?.entry) return { kind: 'ok', target: { userId: found.entry.user_id, asset: found.entry.asset }, charge: { entry: found.entry } };
  if (found?.decided) return { kind: 'error', error: new PermanentJobError('refund_exceeds_charge', `charge "${cmd.chargeEventId}" charged nothing; there is nothing to refund`) };
  // The charge may be in this very batch, ahead of its refund.
  const index = cmds.findIndex((c, j) => j < i && c.op === 'charge' && c.queue === cmd.queue && c.eventId === cmd.chargeEventId);
  if (index < 0) return { kind: 'pending', chargeEventId: cmd.chargeEventId };
  const c = cmds[index] as ChargeCommand;
  return { kind: 'ok', target: { userId: c.userId, asset: c.asset }, charge: { index } };
}
