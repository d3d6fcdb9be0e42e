/**
 * In-process wake-ups for feed consumers (docs/push.md "The feed"): called after each relay transaction that
 * sequenced rows, with the new head. A hint only — it fires in the process that ran the relay, and other
 * processes get the same hint on the `feedChannel` pub/sub channel — so a consumer must also poll.
 */
export type FeedListener = (head: bigint) => void;

const listeners = new Set<FeedListener>();

export function onFeedSequenced(listener: FeedListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function feedSequenced(head: bigint): void {
  for (const l of listeners) {
    try {
      l(head);
    } catch {
      // a consumer's problem never fails the relay
    }
  }
}
