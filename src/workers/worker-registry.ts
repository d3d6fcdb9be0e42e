import type { Worker } from 'bullmq';

/**
 * Every BullMQ Worker a tally process starts is announced here, so cross-cutting concerns (job metrics)
 * attach listeners without any processor knowing about them. Modules that start their own workers
 * (affinity, push) call `workerCreated(worker)`; this file imports nothing, so no import cycle can form.
 */
export type WorkerListener = (worker: Worker) => void;

const listeners = new Set<WorkerListener>();

export function onWorkerCreated(listener: WorkerListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function workerCreated(worker: Worker): void {
  for (const l of listeners) {
    try {
      l(worker);
    } catch {
      // observers never stop a worker from starting
    }
  }
}
