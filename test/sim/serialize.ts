/**
 * One user's jobs of a wave ran concurrently (batched, possibly in two worker processes): tally may have
 * applied them in any order, and the contract only promises each event's effect exactly once. So the model
 * looks for an order of them in which every result it computes is the one tally answered — trying orders on
 * copies of the user's state — and commits the first that fits. None fits: a divergence.
 *
 * Results carry the balance before or after each effect, so two orders that fit leave the same balances — but
 * not always the same entry order: a grant already expired when applied answers the same `balance_after` (the
 * balance, unchanged) on either side of a charge and its refund that cancel out (seed 20059). So an order must
 * also agree with the `transaction_id`s tally answered: in one account they increase in the order tally applied
 * the events (ids are drawn from the sequence while the account is locked, in application order), which is the
 * order the transactions list shows. A job that wrote an entry in an account (in the model) with a
 * `transaction_id` (in tally; a replay's is its original's, so not counted) comes after every other such job of
 * that account with a smaller id. An order that fits the results but not the ids is a divergence too: tally
 * applied one order and recorded another.
 */
import { resultMismatch } from './compare.ts';
import { newUser, type Expected, type Model, type UserState } from './model/model.ts';
import type { PlannedJob } from './plan.ts';
import type { Observation } from './system.ts';

export interface Fitted {
  state: UserState;
  order: number[];
  expected: Expected[];
}

export interface Unfitted {
  /** The longest order that fitted, and the job that broke it with why. */
  prefix: number[];
  index: number;
  why: string;
  tried: number;
}

export function fitOrder(model: Model, user: string, jobs: PlannedJob[], obs: Observation[], originals: Map<string, Record<string, any>>): Fitted | Unfitted {
  let tried = 0;
  let deepest: Unfitted | undefined;
  const idOf = (j: PlannedJob) => j.job.payload.event_id as string;
  /** The entry id tally gave job i's own effect, or null (no entry, a failure, or a replay answering its original's). */
  const tids = obs.map((o) => (o.ok && o.result.outcome !== 'noop_duplicate' && typeof o.result.transaction_id === 'string' ? BigInt(o.result.transaction_id) : null));
  /** `last`: per asset, the largest transaction_id among the jobs placed so far that wrote an entry there. */
  const search = (state: UserState, done: number[], expected: Expected[], last: Map<string, bigint>): Fitted | undefined => {
    if (done.length === jobs.length) return { state, order: done, expected };
    for (let i = 0; i < jobs.length; i++) {
      if (done.includes(i)) continue;
      const j = jobs[i]!;
      // A refund whose charge is in this wave waits for it (contract v2: retried until the charge is applied).
      if (j.after && jobs.some((c, k) => idOf(c) === j.after && !j.replay && !done.includes(k))) continue;
      tried++;
      const next = structuredClone(state);
      const exp = model.apply(next, j.job);
      let why = resultMismatch(exp, obs[i]!, originals.get(`${j.job.queue}|${idOf(j)}`));
      const nextLast = new Map(last);
      const tid = tids[i]!;
      if (!why && tid !== null) {
        for (const asset of wroteIn(state, next)) {
          const before = last.get(asset);
          if (before !== undefined && before > tid) {
            why = `its ${asset} entry has transaction_id ${tid}, lower than ${before} of a job this order applied before it (tally applied them the other way round)`;
            break;
          }
          nextLast.set(asset, tid);
        }
      }
      if (why) {
        if (!deepest || done.length > deepest.prefix.length) deepest = { prefix: done, index: i, why, tried };
        continue;
      }
      const found = search(next, [...done, i], [...expected, exp], nextLast);
      if (found) return found;
    }
    return undefined;
  };
  const found = search(model.users.get(user) ?? newUser(), [], [], new Map());
  return found ?? { ...deepest!, tried };
}

/** The assets whose account got a new entry (grant, consume, refund) between two states of one user. */
function wroteIn(before: UserState, after: UserState): string[] {
  const out: string[] = [];
  for (const [asset, acct] of after.accounts) if (acct.entries.length > (before.accounts.get(asset)?.entries.length ?? 0)) out.push(asset);
  return out;
}
