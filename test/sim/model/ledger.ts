/**
 * One account (user, asset) of the model ledger, as plain data (structuredClone-able, so the driver can try
 * an ordering of events on a copy). Written from CONTRACT §3 and §4:
 *
 * - balance = Σ remaining of the batches not past expires_at − debt; a batch at or past its expires_at is
 *   never burned, counted or used to pay debt (v2), and whatever it still held is expired;
 * - a charge burns batches soonest-expiring first, never-expiring last, then oldest first; what they cannot
 *   cover is debt; the next grant pays debt first;
 * - a refund gives back newest-first; the part of the charge that went into debt lowers the debt while unpaid,
 *   otherwise goes back to the batches that paid it, with their expiry; a part whose batch has expired is
 *   counted as refunded but not revived (v2). Nothing here ever creates a batch except a grant.
 */
export interface Batch {
  /** Creation order in this account: the tie-break of the burn order. */
  seq: number;
  amount: bigint;
  remaining: bigint;
  /** Epoch ms; null = never. */
  expiresAt: number | null;
  /** expiresAt was counted from tally's clock (a default expiry): known to within the time model's slack. */
  fuzzy: boolean;
  /** The grant's source, or null where the name is tally's own choice (level rewards) and is not compared. */
  source: string | null;
}

/** What the model remembers of a charge, for its refunds. */
export interface ChargeRecord {
  asset: string;
  /** What it charged: 0 for a charge that charged nothing (rejected, free). */
  amount: bigint;
  refunded: bigint;
  /** The batches it burned, in burn order, with what is still refundable of each. */
  burned: { batch: number; left: bigint }[];
  /** The part that went into debt: still unpaid … */
  unpaid: bigint;
  /** … and paid since, by which batch (a grant's, or one a refund refilled), in payment order. */
  paidBy: { batch: number; left: bigint }[];
}

export interface Entry {
  kind: 'grant' | 'consume' | 'refund';
  /** Signed, as in the transactions list. */
  amount: bigint;
  /** null for ids tally derives itself (level rewards): not compared. */
  eventId: string | null;
  before: bigint;
}

export interface Hold {
  holdId: string;
  eventId: string;
  /** The request, canonical: the same event_id with another body is a conflict. */
  canon: string;
  asset: string;
  amount: bigint;
  expiresAt: number;
  status: 'active' | 'settled' | 'released';
}

export interface Account {
  asset: string;
  /** Every batch ever made here, in creation order (dead and empty ones too). */
  batches: Batch[];
  debt: bigint;
  granted: bigint;
  consumed: bigint;
  /** Entries other than `expire` (whose timing the contract leaves to tally), in order. */
  entries: Entry[];
  /** Charges with unpaid debt, oldest first: a grant pays the oldest debt first (model decision, docs/simulation.md). */
  owing: string[];
}

export type Charges = Map<string, ChargeRecord>;

export function newAccount(asset: string): Account {
  return { asset, batches: [], debt: 0n, granted: 0n, consumed: 0n, entries: [], owing: [] };
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);

/** §3 (v2): a batch counts until its expires_at, and from then on never again. */
export const isLive = (b: Batch, now: number): boolean => b.expiresAt === null || b.expiresAt > now;

export function balanceOf(a: Account, now: number): bigint {
  let sum = 0n;
  for (const b of a.batches) if (isLive(b, now)) sum += b.remaining;
  return sum - a.debt;
}

/** What expired: everything a batch still held at its expires_at (nothing touches a dead batch after). */
export function expiredOf(a: Account, now: number): bigint {
  let sum = 0n;
  for (const b of a.batches) if (!isLive(b, now)) sum += b.remaining;
  return sum;
}

/** Burn order: soonest expiry first, never-expiring last, then creation. */
export function burnOrder(x: Batch, y: Batch): number {
  if (x.expiresAt !== y.expiresAt) {
    if (x.expiresAt === null) return 1;
    if (y.expiresAt === null) return -1;
    return x.expiresAt - y.expiresAt;
  }
  return x.seq - y.seq;
}

/** A live batch pays the account's debt, oldest debt first, and remembers it paid it. */
function payDebt(a: Account, charges: Charges, batch: Batch): void {
  while (a.debt > 0n && batch.remaining > 0n) {
    const c = charges.get(a.owing[0]!)!;
    const x = min(c.unpaid, batch.remaining);
    c.unpaid -= x;
    batch.remaining -= x;
    a.debt -= x;
    const last = c.paidBy.at(-1);
    if (last && last.batch === batch.seq) last.left += x;
    else c.paidBy.push({ batch: batch.seq, left: x });
    if (c.unpaid === 0n) a.owing.shift();
  }
}

export interface GrantIn {
  amount: bigint;
  expiresAt: number | null;
  fuzzy: boolean;
  source: string | null;
  eventId: string | null;
}

/**
 * §3 grants: a batch of `amount`; debt is paid from it first (one grant entry for the whole amount). (v2) A
 * grant whose expires_at is not after now is recorded and expires at once: it adds nothing spendable and
 * pays no debt. Returns the balance after the event.
 */
export function grant(a: Account, charges: Charges, g: GrantIn, now: number): bigint {
  const before = balanceOf(a, now);
  const batch: Batch = { seq: a.batches.length, amount: g.amount, remaining: g.amount, expiresAt: g.expiresAt, fuzzy: g.fuzzy, source: g.source };
  a.batches.push(batch);
  a.granted += g.amount;
  a.entries.push({ kind: 'grant', amount: g.amount, eventId: g.eventId, before });
  if (isLive(batch, now)) payDebt(a, charges, batch);
  return balanceOf(a, now);
}

/** §3 charges: burns `amount` from the live batches in burn order; the rest becomes debt. */
export function consume(a: Account, charges: Charges, eventId: string, amount: bigint, now: number): { before: bigint; after: bigint } {
  const before = balanceOf(a, now);
  const record: ChargeRecord = { asset: a.asset, amount, refunded: 0n, burned: [], unpaid: 0n, paidBy: [] };
  let left = amount;
  for (const b of a.batches.filter((x) => isLive(x, now) && x.remaining > 0n).sort(burnOrder)) {
    if (left === 0n) break;
    const take = min(b.remaining, left);
    b.remaining -= take;
    left -= take;
    record.burned.push({ batch: b.seq, left: take });
  }
  if (left > 0n) {
    record.unpaid = left;
    a.debt += left;
    a.owing.push(eventId);
  }
  charges.set(eventId, record);
  a.consumed += amount;
  a.entries.push({ kind: 'consume', amount: -amount, eventId, before });
  return { before, after: balanceOf(a, now) };
}

/**
 * §3 refunds (v2), newest-first: the charge's debt part (what is still unpaid lowers the debt; what was paid
 * goes back to the batches that paid it, in reverse burn order of those batches), then the batches it burned
 * in reverse burn order; parts whose batch has expired come last and are counted but not revived. Points that
 * come back while the account owes other debt pay that debt, as a grant's would (debt > 0 ⇒ nothing to burn):
 * once every part is back, from the refilled batches in burn order.
 * The caller has checked 0 < requested ≤ what is left refundable.
 */
export function refund(a: Account, charges: Charges, chargeId: string, eventId: string, requested: bigint, now: number): { restored: bigint; before: bigint; after: bigint } {
  const c = charges.get(chargeId)!;
  const before = balanceOf(a, now);
  const batchOf = (seq: number) => a.batches[seq]!;
  let want = requested;
  let restored = 0n;

  const fromUnpaid = min(c.unpaid, want);
  if (fromUnpaid > 0n) {
    c.unpaid -= fromUnpaid;
    a.debt -= fromUnpaid;
    if (c.unpaid === 0n) a.owing = a.owing.filter((id) => id !== chargeId);
    want -= fromUnpaid;
    restored += fromUnpaid;
  }
  // Both kinds of live part go back in reverse burn order of their batch (never-expiring and latest-expiring
  // first, then the newest batch): tally's documented order for burns, and its choice for paid debt parts too.
  const reverseBurn = (x: { batch: number }, y: { batch: number }) => burnOrder(batchOf(y.batch), batchOf(x.batch));
  const livePaid = c.paidBy.filter((p) => isLive(batchOf(p.batch), now)).sort(reverseBurn);
  const liveBurned = c.burned.filter((p) => isLive(batchOf(p.batch), now)).sort(reverseBurn);
  const dead = [...c.paidBy, ...c.burned].filter((p) => !isLive(batchOf(p.batch), now));
  for (const part of [...livePaid, ...liveBurned]) {
    const x = min(part.left, want);
    if (x === 0n) continue;
    part.left -= x;
    want -= x;
    restored += x;
    batchOf(part.batch).remaining += x;
  }
  for (const part of dead) {
    const x = min(part.left, want);
    part.left -= x;
    want -= x;
  }
  // Only once every part is back does the account's other debt get paid, oldest debt first, from the live
  // batches in burn order (soonest-expiring first) — as a charge would burn them. While in debt every live batch
  // was empty, so these are the batches this refund refilled. (Not: each batch paying as it is refilled, in
  // refund order — that pays from the latest-expiring points first; seed 40062, docs/simulation.md.)
  for (const batch of a.batches.filter((b) => isLive(b, now) && b.remaining > 0n).sort(burnOrder)) payDebt(a, charges, batch);
  c.refunded += requested;
  a.consumed -= restored;
  if (restored > 0n) a.entries.push({ kind: 'refund', amount: restored, eventId, before });
  return { restored, before, after: balanceOf(a, now) };
}

export const refundableOf = (c: ChargeRecord): bigint => c.amount - c.refunded;
