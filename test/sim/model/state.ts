/**
 * The model's state of one user: everything a user's events can touch, and nothing another user's can, so
 * the driver can try orderings of one user's concurrent events on a copy (`structuredClone`).
 */
import type { Device } from './affinity.ts';
import type { Account, Charges, Hold } from './ledger.ts';

export interface Decision {
  canon: string;
  result: Record<string, unknown>;
}

export interface UserState {
  accounts: Map<string, Account>;
  charges: Charges;
  holds: Map<string, Hold>;
  holdByEvent: Map<string, string>;
  devices: Map<string, Device>;
  /** §3 exactly-once: the decision per (queue, event_id), with the payload it was made for. */
  decisions: Map<string, Decision>;
  /** Reward events granted per `type|day` (the day in the config's timezone, by occurred_at). */
  rewardDays: Map<string, number>;
}

export const newUser = (): UserState => ({
  accounts: new Map(),
  charges: new Map(),
  holds: new Map(),
  holdByEvent: new Map(),
  devices: new Map(),
  decisions: new Map(),
  rewardDays: new Map(),
});
