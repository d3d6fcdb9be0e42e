import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../context.ts';
import { PricingError, quoteMaxCost } from '../../domain/pricing.ts';
import { HttpError } from '../../errors.ts';
import { readBalance, readBatches, readTransactions } from '../../ledger/read.ts';
import { usageSchema } from '../../queues/charges/schema.ts';
import { idSchema } from '../../queues/common.ts';
import { authorize } from '../auth.ts';
import { parse } from '../validate.ts';

const userParams = z.object({ user_id: idSchema });
const balanceParams = z.object({ user_id: idSchema, asset: idSchema });
const txQuery = z
  .object({
    asset: idSchema.optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
    cursor: z.string().max(64).optional(),
  })
  .strict();
const batchesQuery = z.object({ asset: idSchema.optional() }).strict();
const quoteBody = z
  .object({ user_id: idSchema, asset: idSchema, source_type: idSchema, usage: usageSchema.optional() })
  .strict();

/** Cursors are opaque to clients: base64url of the last entry id seen. */
export function encodeCursor(entryId: bigint): string {
  return Buffer.from(`e:${entryId}`).toString('base64url');
}
export function decodeCursor(cursor: string): bigint {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const m = /^e:(\d{1,19})$/.exec(text);
  if (!m) throw new HttpError(400, 'invalid_cursor', 'malformed cursor');
  return BigInt(m[1]!);
}

export function ledgerRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.addHook('preHandler', authorize({ api: ctx.env.TALLY_API_TOKEN, admin: ctx.env.TALLY_ADMIN_TOKEN }, 'api'));

  app.get('/v1/users/:user_id/balances/:asset', async (req) => {
    const p = parse(balanceParams, req.params, 'path');
    return readBalance(ctx.sql, p.user_id, p.asset);
  });

  app.get('/v1/users/:user_id/transactions', async (req) => {
    const { user_id } = parse(userParams, req.params, 'path');
    const q = parse(txQuery, req.query, 'query');
    const page = await readTransactions(ctx.sql, user_id, {
      asset: q.asset,
      limit: q.limit,
      before: q.cursor === undefined ? undefined : decodeCursor(q.cursor),
    });
    return { items: page.items, next_cursor: page.next === null ? null : encodeCursor(page.next) };
  });

  app.get('/v1/users/:user_id/batches', async (req) => {
    const { user_id } = parse(userParams, req.params, 'path');
    const q = parse(batchesQuery, req.query, 'query');
    return { items: await readBatches(ctx.sql, user_id, q.asset) };
  });

  app.post('/v1/quotes', async (req) => {
    const body = parse(quoteBody, req.body, 'body');
    const { doc } = await ctx.configs.get(ctx.sql);
    if (!doc.assets[body.asset]) throw new HttpError(422, 'unknown_asset', `unknown asset "${body.asset}"`);
    const rule = doc.pricing[body.asset]?.[body.source_type];
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
