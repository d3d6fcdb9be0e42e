/**
 * One user's jobs of a wave ran concurrently (batched, possibly in two worker processes): tally may have
 * applied them in any order, and the contract only promises each event's effect exactly once. So the model
 * looks for an order of them in which every result it computes is the one tally answered — trying orders on
 * copies of the user's state — and commits the first that fits. None fits: a divergence. (Results carry the
 * balance before or after each effect, so two orders that fit leave the same state.)
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
  const search = (state: UserState, done: number[], expected: Expected[]): Fitted | undefined => {
    if (done.length === jobs.length) return { state, order: done, expected };
    for (let i = 0; i < jobs.length; i++) {
      if (done.includes(i)) continue;
      const j = jobs[i]!;
      // A refund whose charge is in this wave waits for it (contract v2: retried until the charge is applied).
      if (j.after && jobs.some((c, k) => idOf(c) === j.after && !j.replay && !done.includes(k))) continue;
      tried++;
      const next = structuredClone(state);
      const exp = model.apply(next, j.job);
      const why = resultMismatch(exp, obs[i]!, originals.get(`${j.job.queue}|${idOf(j)}`));
      if (why) {
        if (!deepest || done.length > deepest.prefix.length) deepest = { prefix: done, index: i, why, tried };
        continue;
      }
      const found = search(next, [...done, i], [...expected, exp]);
      if (found) return found;
    }
    return undefined;
  };
  const found = search(model.users.get(user) ?? newUser(), [], []);
  return found ?? { ...deepest!, tried };
}
