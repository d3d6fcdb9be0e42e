/**
 * What the public reads must show for one user of the model (§4 balances, batches, transactions; §4 affinity),
 * and the levels marked rewarded: the shape the driver compares tally's reads with.
 */
import { levelOf, newDevice, nextLevelOf } from './affinity.ts';
import { levelsOf, type ConfigDoc } from './config.ts';
import { balanceOf, burnOrder, expiredOf, isLive } from './ledger.ts';
import type { UserState } from './state.ts';

const num = (n: bigint) => Number(n);

/** `alsoDevices`: devices tally knows of and the model does not (they read as never seen). */
export function viewOf(u: UserState, now: number, doc: ConfigDoc, heldOf: (asset: string) => bigint, alsoDevices: Iterable<string>): UserView {
  const accounts: Record<string, AccountView> = {};
  for (const [asset, a] of u.accounts) {
    const balance = balanceOf(a, now);
    const held = heldOf(asset);
    accounts[asset] = {
      balance: num(balance),
      held: num(held),
      available: num(balance - held),
      total_granted: num(a.granted),
      total_consumed: num(a.consumed),
      total_expired: num(expiredOf(a, now)),
      overdrawn: a.debt > 0n,
      debt: num(a.debt),
      batches: a.batches
        .filter((b) => isLive(b, now) && b.remaining > 0n)
        .sort(burnOrder)
        .map((b) => ({ amount: num(b.amount), remaining: num(b.remaining), expiresAt: b.expiresAt, fuzzy: b.fuzzy, source: b.source })),
      entries: a.entries.map((e) => ({ kind: e.kind, amount: num(e.amount), eventId: e.eventId, before: num(e.before) })),
      expired: a.batches.filter((b) => !isLive(b, now) && b.remaining > 0n).map((b) => num(b.remaining)).sort((x, y) => x - y),
    };
  }
  const levels = levelsOf(doc);
  const devices: Record<string, DeviceView> = {};
  const all = new Map(u.devices);
  for (const id of alsoDevices) if (!all.has(id)) all.set(id, newDevice());
  for (const [id, d] of all) {
    const next = nextLevelOf(levels, d.value);
    devices[id] = { value: d.value, level: levelOf(levels, d.value), next_level: next?.level ?? null, next_threshold: next?.threshold ?? null, rewarded: [...d.rewarded].sort((x, y) => x - y) };
  }
  return { accounts, devices };
}

export interface AccountView {
  balance: number;
  held: number;
  available: number;
  total_granted: number;
  total_consumed: number;
  total_expired: number;
  overdrawn: boolean;
  debt: number;
  batches: { amount: number; remaining: number; expiresAt: number | null; fuzzy: boolean; source: string | null }[];
  entries: { kind: string; amount: number; eventId: string | null; before: number }[];
  /** What each expired batch held when it expired (the amounts of the `expire` entries, once swept). */
  expired: number[];
}

export interface DeviceView {
  value: number;
  level: number;
  next_level: number | null;
  next_threshold: number | null;
  rewarded: number[];
}

export interface UserView {
  accounts: Record<string, AccountView>;
  devices: Record<string, DeviceView>;
}
