import type { ChargeCommand, GrantCommand, LedgerCommand, RefundCommand, RewardCommand } from '../../src/ledger/commands.ts';
import { payloadHash } from '../../src/workers/ledger-commands.ts';

/**
 * Ledger commands as the workers build them, for tests that call the ledger transaction directly. The payload
 * hash covers every field, so the same call twice is a replay and a changed field is a different payload.
 */
function key(queue: string, eventId: string, fields: object) {
  const payload = JSON.parse(JSON.stringify(fields, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
  return { queue, eventId, jobId: eventId, payloadHash: payloadHash(payload), payload };
}

export function grantCmd(eventId: string, userId: string, amount: bigint | number, extra: Partial<GrantCommand> = {}): GrantCommand {
  const fields = { op: 'grant' as const, userId, asset: 'points', amount: BigInt(amount), source: 'recharge', sourceId: null, expiresAt: undefined, description: null, ...extra };
  return { ...key('grants', eventId, fields), ...fields, eventId };
}

export function chargeCmd(eventId: string, userId: string, amount: bigint | number | null, extra: Partial<ChargeCommand> = {}): ChargeCommand {
  const fields = {
    op: 'charge' as const,
    userId,
    asset: 'points',
    sourceType: 'script',
    sourceId: 's',
    usage: null,
    amount: amount === null ? null : BigInt(amount),
    policy: 'postpaid' as const,
    occurredAt: new Date(),
    description: null,
    holdId: null,
    ...extra,
  };
  return { ...key('charges', eventId, fields), ...fields, eventId };
}

export function refundCmd(eventId: string, chargeEventId: string, amount: bigint | number | null = null, extra: Partial<RefundCommand> = {}): RefundCommand {
  const fields = { op: 'refund' as const, chargeEventId, amount: amount === null ? null : BigInt(amount), reason: null, ...extra };
  return { ...key('charges', eventId, fields), ...fields, eventId } as RefundCommand;
}

export function rewardCmd(eventId: string, userId: string, extra: Partial<RewardCommand> = {}): RewardCommand {
  const fields = { op: 'reward' as const, eventType: 'forum.post.liked', eventVersion: '1', userId, sourceRefId: `post-${eventId}`, occurredAt: new Date(), ...extra };
  return { ...key('grants', eventId, fields), ...fields, eventId } as RewardCommand;
}

/** What each command came to: its outcome, or its failure code. */
export function outcomesOf(outcomes: { ok: boolean; result?: { outcome: string }; error?: { code: string } }[]): string[] {
  return outcomes.map((o) => (o.ok ? o.result!.outcome : o.error!.code));
}

export type { LedgerCommand };
