/**
 * Reads one run's users as tally shows them: the public HTTP API where the contract has a read (§4 balances,
 * batches, transactions, affinity), SQL where it has none (an account's debt, the levels marked rewarded).
 */
import type { TallySystem } from './system.ts';

export interface TallyAccount {
  balance: number;
  held: number;
  available: number;
  total_granted: number;
  total_consumed: number;
  total_expired: number;
  overdrawn: boolean;
  debt: number;
  batches: { amount: number; remaining: number; expires_at: string | null; source: string }[];
  /** Entries other than `expire`, oldest first. */
  entries: { kind: string; amount: number; event_id: string | null; balance_before: number; balance_after: number }[];
  /** −amount of every `expire` entry, ascending. */
  expired: number[];
}

export interface TallyDevice {
  value: number;
  level: number;
  next_level: number | null;
  next_threshold: number | null;
  rewarded: number[];
}

export interface TallyUser {
  accounts: Record<string, TallyAccount>;
  devices: Record<string, TallyDevice>;
}

async function get(sys: TallySystem, path: string): Promise<any> {
  const r = await sys.http('GET', path);
  if (r.status !== 200) throw new Error(`GET ${path} → ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Every account and device of `users` that either tally or the model knows of (`known`). */
export async function observe(sys: TallySystem, users: string[], known: { assets: (u: string) => string[]; devices: (u: string) => string[] }): Promise<Record<string, TallyUser>> {
  const sql = sys.world.sql;
  const [accountRows, deviceRows, grantedRows] = await Promise.all([
    sql<{ user_id: string; asset: string; debt: bigint }[]>`SELECT user_id, asset, debt FROM accounts WHERE user_id = ANY(${users})`,
    sql<{ user_id: string; device_id: string }[]>`SELECT user_id, device_id FROM affinity_devices WHERE user_id = ANY(${users})`,
    sql<{ user_id: string; device_id: string; level: number }[]>`SELECT user_id, device_id, level FROM affinity_granted_levels WHERE user_id = ANY(${users}) ORDER BY level`,
  ]);
  const out: Record<string, TallyUser> = {};
  await Promise.all(
    users.map(async (user) => {
      const assets = new Set([...known.assets(user), ...accountRows.filter((r) => r.user_id === user).map((r) => r.asset)]);
      const devices = new Set([...known.devices(user), ...deviceRows.filter((r) => r.user_id === user).map((r) => r.device_id)]);
      const enc = encodeURIComponent(user);
      const [batches, entries] = await Promise.all([get(sys, `/v1/users/${enc}/batches`), transactions(sys, enc)]);
      const accounts: Record<string, TallyAccount> = {};
      for (const asset of assets) {
        const b = await get(sys, `/v1/users/${enc}/balances/${encodeURIComponent(asset)}`);
        const mine = entries.filter((e) => e.asset === asset);
        accounts[asset] = {
          balance: b.balance, held: b.held, available: b.available, total_granted: b.total_granted, total_consumed: b.total_consumed, total_expired: b.total_expired, overdrawn: b.overdrawn,
          debt: Number(accountRows.find((r) => r.user_id === user && r.asset === asset)?.debt ?? 0n),
          batches: batches.items.filter((x: any) => x.asset === asset).map((x: any) => ({ amount: x.amount, remaining: x.remaining, expires_at: x.expires_at, source: x.source })),
          entries: mine.filter((e) => e.kind !== 'expire').map((e) => ({ kind: e.kind, amount: e.amount, event_id: e.event_id, balance_before: e.balance_before, balance_after: e.balance_after })),
          expired: mine.filter((e) => e.kind === 'expire').map((e) => -e.amount).sort((x, y) => x - y),
        };
      }
      const devs: Record<string, TallyDevice> = {};
      for (const device of devices) {
        const a = await get(sys, `/v1/users/${enc}/devices/${encodeURIComponent(device)}/affinity`);
        devs[device] = {
          value: a.value, level: a.level, next_level: a.next_level, next_threshold: a.next_threshold,
          rewarded: grantedRows.filter((g) => g.user_id === user && g.device_id === device).map((g) => g.level),
        };
      }
      out[user] = { accounts, devices: devs };
    }),
  );
  return out;
}

/** Every entry of a user, oldest first (the list is newest first, paged by cursor). */
async function transactions(sys: TallySystem, user: string): Promise<any[]> {
  const all: any[] = [];
  let cursor: string | null = null;
  do {
    const page: any = await get(sys, `/v1/users/${user}/transactions?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
    all.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return all.reverse();
}
