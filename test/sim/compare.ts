/**
 * Where tally and the model disagree: one job result against what the model expected, and one user's state
 * (balances, held, debt, batches, entries, expiries, affinity, rewarded levels) against the model's view.
 */
import { PRESENT, type Expected } from './model/model.ts';
import type { AccountView, DeviceView, UserView } from './model/view.ts';
import type { TallyAccount, TallyDevice, TallyUser } from './observe.ts';
import type { Observation } from './system.ts';

const show = (v: unknown) => JSON.stringify(v);

/** Why an observed job ending is not what the model expected, or null when it is. */
export function resultMismatch(exp: Expected, obs: Observation, original?: Record<string, any>): string | null {
  if (!exp.ok) {
    if (obs.ok) return `model: fails ${exp.code}; tally: ${show(obs.result)}`;
    return obs.code === exp.code ? null : `model: fails ${exp.code}; tally: fails ${obs.reason}`;
  }
  if (!obs.ok) return `model: ${show(exp.result)}; tally: fails ${obs.reason}`;
  const bad: string[] = [];
  for (const [key, want] of Object.entries(exp.result)) {
    const got = obs.result[key];
    if (key === 'transaction_id') {
      if (want === PRESENT ? typeof got !== 'string' || got === '' : got !== null && got !== undefined) bad.push(`transaction_id (model: ${want === PRESENT ? 'an entry' : 'none'}, tally: ${show(got)})`);
      else if (want === PRESENT && original && exp.result.outcome === 'noop_duplicate' && got !== original.transaction_id) {
        bad.push(`transaction_id of the replay ${show(got)} ≠ the original's ${show(original.transaction_id)}`);
      }
    } else if (key === 'rewards') {
      const g = Array.isArray(got) ? got : [];
      const same = g.length === (want as unknown[]).length && (want as any[]).every((w, i) => g[i]?.level === w.level && g[i]?.asset === w.asset && g[i]?.amount === w.amount && (g[i]?.outcome === undefined || g[i]?.outcome === 'applied'));
      if (!same) bad.push(`rewards (model: ${show(want)}, tally: ${show(got)})`);
    } else if (show(want) !== show(got)) bad.push(`${key} (model: ${show(want)}, tally: ${show(got)})`);
  }
  return bad.length === 0 ? null : `${bad.join('; ')} — tally's result: ${show(obs.result)}`;
}

const ZERO_ACCOUNT: AccountView = { balance: 0, held: 0, available: 0, total_granted: 0, total_consumed: 0, total_expired: 0, overdrawn: false, debt: 0, batches: [], entries: [], expired: [] };
const ZERO_DEVICE: DeviceView = { value: 0, level: 0, next_level: null, next_threshold: null, rewarded: [] };
const ZERO_TALLY_DEVICE: TallyDevice = { value: 0, level: 0, next_level: null, next_threshold: null, rewarded: [] };

/** Is `small` a sub-multiset of `big` (both ascending)? */
function within(small: number[], big: number[]): boolean {
  const left = [...big];
  return small.every((x) => {
    const i = left.indexOf(x);
    if (i < 0) return false;
    left.splice(i, 1);
    return true;
  });
}

function accountDiffs(asset: string, m: AccountView, t: TallyAccount | undefined, opts: { swept: boolean; slack: number }): string[] {
  const out: string[] = [];
  const tv = t ?? { ...ZERO_ACCOUNT, batches: [], entries: [], expired: [] };
  for (const f of ['balance', 'held', 'available', 'total_granted', 'total_consumed', 'total_expired', 'overdrawn', 'debt'] as const) {
    if (m[f] !== (tv as any)[f]) out.push(`${asset}.${f}: model ${show(m[f])}, tally ${show((tv as any)[f])}`);
  }
  const batchText = (b: AccountView['batches'][number]) => `${b.remaining}/${b.amount} exp ${b.expiresAt === null ? 'never' : new Date(b.expiresAt).toISOString()}${b.fuzzy ? '~' : ''} ${b.source ?? '*'}`;
  const batchesMatch =
    m.batches.length === tv.batches.length &&
    m.batches.every((b, i) => {
      const x = tv.batches[i]!;
      const at = x.expires_at === null ? null : Date.parse(x.expires_at);
      const expiryOk = b.expiresAt === null ? at === null : at !== null && (b.fuzzy ? at >= b.expiresAt && at < b.expiresAt + opts.slack : at === b.expiresAt);
      return b.amount === x.amount && b.remaining === x.remaining && expiryOk && (b.source === null || b.source === x.source);
    });
  if (!batchesMatch) out.push(`${asset}.batches: model [${m.batches.map(batchText).join(', ')}], tally [${tv.batches.map((x) => `${x.remaining}/${x.amount} exp ${x.expires_at ?? 'never'} ${x.source}`).join(', ')}]`);
  const entryText = (e: { kind: string; amount: number; eventId?: string | null; event_id?: string | null; before?: number; balance_before?: number }) =>
    `${e.kind} ${e.amount} @${e.before ?? e.balance_before} ${e.eventId ?? e.event_id ?? '*'}`;
  const firstBad = Math.max(m.entries.length, tv.entries.length) === 0 ? -1 : [...Array(Math.max(m.entries.length, tv.entries.length)).keys()].find((i) => {
    const a = m.entries[i];
    const b = tv.entries[i];
    return !a || !b || a.kind !== b.kind || a.amount !== b.amount || a.before !== b.balance_before || (a.eventId !== null && a.eventId !== b.event_id);
  });
  if (firstBad !== undefined && firstBad >= 0) {
    out.push(`${asset}.entries differ from #${firstBad}: model [${m.entries.slice(firstBad, firstBad + 4).map(entryText).join(', ')}], tally [${tv.entries.slice(firstBad, firstBad + 4).map(entryText).join(', ')}] (model ${m.entries.length}, tally ${tv.entries.length} entries)`);
  }
  const expiredOk = opts.swept ? show(m.expired) === show(tv.expired) : within(tv.expired, m.expired);
  if (!expiredOk) out.push(`${asset}.expire entries: model ${opts.swept ? '' : '⊇ '}${show(m.expired)}, tally ${show(tv.expired)}`);
  return out;
}

function deviceDiffs(device: string, m: DeviceView, t: TallyDevice): string[] {
  const out: string[] = [];
  for (const f of ['value', 'level', 'next_level', 'next_threshold', 'rewarded'] as const) {
    if (show(m[f]) !== show(t[f])) out.push(`device ${device}.${f}: model ${show(m[f])}, tally ${show(t[f])}`);
  }
  return out;
}

/** Every difference between the model's view of a user and tally's. `swept`: the expire sweep ran at this instant. */
export function userDiffs(m: UserView, t: TallyUser, opts: { swept: boolean; slack: number }): string[] {
  const out: string[] = [];
  for (const asset of new Set([...Object.keys(m.accounts), ...Object.keys(t.accounts)])) {
    out.push(...accountDiffs(asset, m.accounts[asset] ?? ZERO_ACCOUNT, t.accounts[asset], opts));
  }
  for (const device of new Set([...Object.keys(m.devices), ...Object.keys(t.devices)])) {
    out.push(...deviceDiffs(device, m.devices[device] ?? ZERO_DEVICE, t.devices[device] ?? ZERO_TALLY_DEVICE));
  }
  return out;
}
