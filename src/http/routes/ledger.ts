import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppContext } from '../../context.ts';
import { PricingError, quoteMaxCost } from '../../domain/pricing.ts';
import { HttpError } from '../../errors.ts';
import { balanceAt } from '../../ledger/history.ts';
import { readBalance, readBatches, readTransactions } from '../../ledger/read.ts';
import { usageSchema } from '../../queues/charges/schema.ts';
import { idSchema } from '../../queues/common.ts';
import { checkRange, clockFor, historyInstant, rangeFields } from '../history-time.ts';
import { cursorId, errors, limitSchema, named } from '../schemas.ts';

const userParams = z.object({ user_id: idSchema });
const balanceParams = z.object({ user_id: idSchema, asset: idSchema });
const cursorSchema = z.string().max(64).describe('next_cursor of the previous page');
const txQuery = z.object({ asset: idSchema.optional(), limit: limitSchema(50, 500), cursor: cursorSchema.optional(), ...rangeFields }).strict();
const balanceQuery = z.object({ at: historyInstant.optional().describe('the balance as of this instant (the end of its millisecond), from the ledger') }).strict();
const batchesQuery = z.object({ asset: idSchema.optional(), limit: limitSchema(100, 500), cursor: cursorSchema.optional() }).strict();
const quoteBody = z.object({ user_id: idSchema, asset: idSchema, source_type: idSchema, usage: usageSchema.optional() }).strict();

const amount = z.number().int();
export const balanceView = named(
  z.object({
    user_id: z.string(),
    asset: z.string(),
    balance: amount.describe('exact at read time: batches past expires_at never count'),
    held: amount,
    available: amount.describe('balance − held'),
    total_granted: amount,
    total_consumed: amount,
    total_expired: amount,
    overdrawn: z.boolean(),
  }),
  'Balance',
);
/** `?at=`: the balance then, exact and as the ledger recorded it (docs/http.md, "History"). */
export const balanceAtView = named(
  z.object({
    user_id: z.string(),
    asset: z.string(),
    at: z.string(),
    balance: amount.describe('exact at `at`: batches lapsed by then never count, even if their expire entry was written later'),
    recorded_balance: amount.describe('the ledger\'s view: the balance the last entry dated by `at` left'),
    lapsed: amount.describe('recorded_balance − balance: lapsed by `at`, expired in the ledger only later'),
    transaction_id: z.string().nullable().describe('the last entry counted (null: none yet)'),
  }),
  'BalanceAt',
);
const transactionView = named(
  z.object({
    transaction_id: z.string(),
    event_id: z.string().nullable(),
    asset: z.string(),
    kind: z.string().describe('grant, consume, expire, refund, adjust'),
    amount: amount.describe('signed: balance_after = balance_before + amount'),
    balance_before: amount,
    balance_after: amount,
    source_type: z.string().nullable(),
    source_id: z.string().nullable(),
    description: z.string().nullable(),
    usage: z.unknown(),
    batches: z.array(z.object({ batch_id: z.string(), amount })),
    occurred_at: z.string().nullable(),
    created_at: z.string(),
  }),
  'Transaction',
);
const batchView = named(
  z.object({
    batch_id: z.string(),
    asset: z.string(),
    amount,
    remaining: amount,
    expires_at: z.string().nullable(),
    source: z.string(),
    source_id: z.string().nullable(),
    created_at: z.string(),
  }),
  'Batch',
);
const quoteView = z.object({
  user_id: z.string(),
  asset: z.string(),
  source_type: z.string(),
  required: amount.describe('the max cost of the work, by the pricing in force'),
  balance: amount,
  held: amount,
  available: amount,
  sufficient: z.boolean(),
});

/** Cursors are opaque to clients: base64url of a kind letter and the last id seen (`e` entries, `b` batches). */
export function encodeCursor(id: bigint, kind: 'e' | 'b' = 'e'): string {
  return Buffer.from(`${kind}:${id}`).toString('base64url');
}
/** The id in a cursor of that kind; anything else (another kind, garbage, a number past bigint) is a 400. */
export function decodeCursor(cursor: string, kind: 'e' | 'b' = 'e'): bigint {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  return cursorId(text.startsWith(`${kind}:`) ? text.slice(2) : '');
}

export function ledgerRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/v1/users/:user_id/balances/:asset', {
    config: { auth: 'api' },
    schema: {
      tags: ['ledger'],
      summary: 'A balance, exact at read time; with ?at=, as of that instant (BalanceAt)',
      params: balanceParams,
      querystring: balanceQuery,
      response: { 200: z.union([balanceView, balanceAtView]), ...errors(400) },
    },
  }, async (req) => {
    const { user_id, asset } = req.params;
    const at = req.query.at;
    if (at === undefined) return readBalance(ctx.sql, user_id, asset);
    if ((await clockFor(ctx.sql, at)).future) throw new HttpError(400, 'invalid_range', '`at` is in the future (read the balance without `at` for now)');
    const b = await balanceAt(ctx.sql, user_id, asset, at);
    return {
      user_id,
      asset,
      at: new Date(at).toISOString(),
      balance: Number(b.balance),
      recorded_balance: Number(b.recordedBalance),
      lapsed: Number(b.lapsed),
      transaction_id: b.entryId === null ? null : String(b.entryId),
    };
  });

  r.get('/v1/users/:user_id/transactions', {
    config: { auth: 'api' },
    schema: {
      tags: ['ledger'],
      summary: 'Ledger entries, newest first; from (inclusive) / to (exclusive) bound created_at',
      params: userParams,
      querystring: txQuery,
      response: { 200: z.object({ items: z.array(transactionView), next_cursor: z.string().nullable() }), ...errors(400) },
    },
  }, async (req) => {
    const q = req.query;
    checkRange(q.from, q.to);
    const page = await readTransactions(ctx.sql, req.params.user_id, {
      from: q.from,
      to: q.to,
      asset: q.asset,
      limit: q.limit,
      before: q.cursor === undefined ? undefined : decodeCursor(q.cursor),
    });
    return { items: page.items, next_cursor: page.next === null ? null : encodeCursor(page.next) };
  });

  r.get('/v1/users/:user_id/batches', {
    config: { auth: 'api' },
    schema: {
      tags: ['ledger'],
      summary: 'Active batches with something left, in burn order',
      params: userParams,
      querystring: batchesQuery,
      response: { 200: z.object({ items: z.array(batchView), next_cursor: z.string().nullable() }), ...errors(400) },
    },
  }, async (req) => {
    const q = req.query;
    const page = await readBatches(ctx.sql, req.params.user_id, q.asset, { limit: q.limit, after: q.cursor === undefined ? undefined : decodeCursor(q.cursor, 'b') });
    return { items: page.items, next_cursor: page.next === null ? null : encodeCursor(page.next, 'b') };
  });

  r.post('/v1/quotes', {
    config: { auth: 'api' },
    schema: { tags: ['ledger'], summary: 'The max cost of some work, and whether the balance covers it', body: quoteBody, response: { 200: quoteView, ...errors(400, 422) } },
  }, async (req) => {
    const body = req.body;
    const { doc } = await ctx.configs.get(ctx.sql);
    // Own keys only: an id such as "constructor" must not find Object.prototype's.
    if (!Object.hasOwn(doc.assets, body.asset)) throw new HttpError(422, 'unknown_asset', `unknown asset "${body.asset}"`);
    const rules = Object.hasOwn(doc.pricing, body.asset) ? doc.pricing[body.asset] : undefined;
    const rule = rules && Object.hasOwn(rules, body.source_type) ? rules[body.source_type] : undefined;
    if (!rule) throw new HttpError(422, 'unknown_source_type', `no pricing for source_type "${body.source_type}" on asset "${body.asset}"`);
    let required: bigint;
    try {
      required = quoteMaxCost(rule, body.usage);
    } catch (err) {
      if (err instanceof PricingError) throw new HttpError(422, 'invalid_usage', err.message);
      throw err;
    }
    const balance = await readBalance(ctx.sql, body.user_id, body.asset);
    return {
      user_id: body.user_id,
      asset: body.asset,
      source_type: body.source_type,
      required: Number(required),
      balance: balance.balance,
      held: balance.held,
      available: balance.available,
      // An overdrawn account is blocked until topped up: its available balance is negative.
      sufficient: !balance.overdrawn && BigInt(balance.available) >= required,
    };
  });
}
