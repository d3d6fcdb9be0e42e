import { expect } from 'vitest';
import type { Sql } from '../../src/db/client.ts';
import { runReconcile } from '../../src/maintenance/reconcile.ts';

/** Every ledger invariant holds (reconcile finds nothing). */
export async function expectInvariants(sql: Sql): Promise<void> {
  const summary = await runReconcile(sql);
  expect(summary.violations).toEqual([]);
}
