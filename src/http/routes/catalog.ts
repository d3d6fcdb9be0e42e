import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { pricingRuleView } from '../../config/document.ts';
import type { AppContext } from '../../context.ts';
import { HttpError } from '../../errors.ts';
import { idSchema } from '../../queues/common.ts';
import { redactSecrets } from '../redact.ts';
import { latestConfig } from '../sql/config-documents.ts';
import { errors, named } from '../schemas.ts';

const num = z.number().int();
const productView = named(
  z.object({
    sku: z.string(),
    asset: z.string(),
    amount: num.describe('what the order grants'),
    price_cents: num,
    original_price_cents: num.nullable().describe('the price before a discount, to show struck through; null: none'),
  }),
  'Product',
);
/** The workers' own pricing-rule schema (the config document's), so the answer is the rules exactly as in force. */
const pricingRule = named(pricingRuleView, 'PricingRule');
const pricingView = z.object({
  asset: z.string(),
  config_version: num,
  rules: z.record(z.string(), pricingRule).describe('by source_type'),
});
const configView = z.object({
  version: num,
  applied_at: z.string(),
  document: z.record(z.string(), z.unknown()).describe('the document in force, secrets replaced by "[redacted]"'),
  redacted: z.array(z.string()).describe('paths of the values that were redacted, e.g. webhooks.0.secret'),
});

/** The shop page, the price list, and the config in force (CONTRACT v2 §4: reads the reference credit store had). */
export function catalogRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/v1/products', {
    config: { auth: 'api' },
    schema: { tags: ['money'], summary: 'Products on sale (active), by sku', response: { 200: z.object({ items: z.array(productView) }) } },
  }, async () => {
    const { doc } = await ctx.configs.get(ctx.sql);
    const items = Object.entries(doc.products)
      .filter(([, p]) => p.active)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([sku, p]) => ({ sku, asset: p.asset, amount: p.amount, price_cents: p.price_cents, original_price_cents: p.original_price_cents ?? null }));
    return { items };
  });

  r.get('/v1/pricing/:asset', {
    config: { auth: 'api' },
    schema: {
      tags: ['ledger'],
      summary: 'The pricing rules in force for an asset, by source_type',
      params: z.object({ asset: idSchema }).strict(),
      response: { 200: pricingView, ...errors(400, 404) },
    },
  }, async (req) => {
    const { version, doc } = await ctx.configs.get(ctx.sql);
    const { asset } = req.params;
    if (!Object.hasOwn(doc.assets, asset)) throw new HttpError(404, 'unknown_asset', `unknown asset "${asset}"`);
    return { asset, config_version: version, rules: Object.hasOwn(doc.pricing, asset) ? doc.pricing[asset]! : {} };
  });
}

/** `GET /v1/admin/config`: registered in an admin scope of its own. */
export function adminConfigRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get('/v1/admin/config', {
    config: { auth: 'admin' },
    schema: {
      tags: ['admin'],
      summary: 'The config document in force, with its version and when it was applied (secrets redacted)',
      response: { 200: configView, ...errors(404) },
    },
  }, async () => {
    const row = await latestConfig(ctx.sql);
    if (!row) throw new HttpError(404, 'no_config', 'no config document was applied yet');
    const { value, paths } = redactSecrets(row.doc);
    return { version: Number(row.version), applied_at: row.applied_at.toISOString(), document: value as Record<string, unknown>, redacted: paths };
  });
}
