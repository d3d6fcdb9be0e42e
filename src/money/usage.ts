import { z } from 'zod';
import type { Db } from '../db/client.ts';
import { usageGroups } from '../ledger/sql/usage.ts';
import { idSchema } from '../queues/common.ts';

const WINDOW_MS = { '24h': 24 * 3600_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000, all: null } as const;
export type UsageWindow = keyof typeof WINDOW_MS;

export const usageQuerySchema = z
  .object({ asset: idSchema.optional(), window: z.enum(['24h', '7d', '30d', 'all']).default('30d') })
  .strict();

interface Totals {
  amount: number;
  count: number;
  input_tokens: number;
  output_tokens: number;
}

function add(map: Map<string, Totals>, key: string, amount: bigint, count: bigint, input: bigint, output: bigint): void {
  const t = map.get(key) ?? { amount: 0, count: 0, input_tokens: 0, output_tokens: 0 };
  t.amount += Number(amount);
  t.count += Number(count);
  t.input_tokens += Number(input);
  t.output_tokens += Number(output);
  map.set(key, t);
}

/**
 * The usage dashboard, from the ledger itself: what a user's charges cost net of refunds, in a rolling
 * window ending now (24h is the last 24 hours, not a calendar day), by source type and by model.
 */
export async function readUsage(db: Db, userId: string, q: z.infer<typeof usageQuerySchema>, now = new Date()) {
  const ms = WINDOW_MS[q.window];
  const since = ms === null ? null : new Date(now.getTime() - ms);
  const rows = await usageGroups(db, userId, q.asset, since);
  const bySource = new Map<string, Totals>();
  const byModel = new Map<string, Totals>();
  let total = 0n;
  let count = 0n;
  let input = 0n;
  let output = 0n;
  for (const r of rows) {
    total += r.amount;
    count += r.count;
    input += r.input_tokens;
    output += r.output_tokens;
    add(bySource, r.source_type, r.amount, r.count, r.input_tokens, r.output_tokens);
    if (r.model !== '') add(byModel, r.model, r.amount, r.count, r.input_tokens, r.output_tokens);
  }
  const sorted = (m: Map<string, Totals>) => [...m.entries()].sort((a, b) => b[1].amount - a[1].amount || (a[0] < b[0] ? -1 : 1));
  return {
    user_id: userId,
    asset: q.asset ?? null,
    window: q.window,
    since: since?.toISOString() ?? null,
    total: Number(total),
    count: Number(count),
    tokens: { input: Number(input), output: Number(output) },
    by_source_type: sorted(bySource).map(([source_type, t]) => ({ source_type, amount: t.amount, count: t.count, input_tokens: t.input_tokens, output_tokens: t.output_tokens })),
    by_model: sorted(byModel).map(([model, t]) => ({ model, amount: t.amount, count: t.count, input_tokens: t.input_tokens, output_tokens: t.output_tokens })),
  };
}
