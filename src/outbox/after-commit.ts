/**
 * Listeners told, after a transaction that wrote outbox rows has committed, that there is something to
 * relay (the push relay's fast path). Fire-and-forget: a listener's failure never reaches the business path;
 * the relay's periodic sweep picks up whatever a lost notification missed.
 */
export type CommitListener = (info: { outboxRows: number }) => void;

const listeners = new Set<CommitListener>();

export function onOutboxCommitted(listener: CommitListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function outboxCommitted(outboxRows: number): void {
  if (outboxRows === 0) return;
  for (const l of listeners) {
    try {
      l({ outboxRows });
    } catch {
      // push problems never fail a ledger job
    }
  }
}
