import { z } from 'zod';
import { alertsAndWebhooksIssues, alertsSchema, webhooksSchema } from './alerts-webhooks.ts'; // alerts & webhooks (v2)

/**
 * The tally config document (`tally config apply FILE`, `PUT /v1/admin/config`), CONTRACT §6.
 * A document that does not validate is refused as a whole; the one in force stays.
 */
const name = z.string().regex(/^[A-Za-z0-9._@-]{1,128}$/, 'ids use 1–128 chars of [A-Za-z0-9._@-]');
/** A free-form key (reward event types, model names): no control characters, and never `__proto__` (see mapOf). */
const freeKey = z
  .string()
  .min(1)
  .max(128)
  .refine((k) => !/[\u0000-\u001f]/.test(k), 'must not contain control characters');

/**
 * A map the document declares (assets, pricing, models, rules, products, rewards) and tally looks up by keys that
 * come from events and requests. It is parsed into a null-prototype object, so a lookup by `constructor`,
 * `toString` or `__proto__` finds only what the document declares — never Object.prototype. (`__proto__` as a key
 * is refused before parsing: see reservedKeyIssues.) Sections added later that are looked up by input keys should
 * be declared with it too.
 */
export function mapOf<V extends z.ZodType>(key: z.ZodType<string>, value: V) {
  return z.record(key, value).transform((m): Record<string, z.output<V>> => Object.assign(Object.create(null) as Record<string, z.output<V>>, m));
}
const positiveNumber = z.number().finite().positive();
const points = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const timezone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'not a known IANA timezone');

const assetSchema = z
  .object({ default_expiry_days: z.number().int().positive().max(36_500).nullable().default(null) })
  .strict();

const estimateSchema = z
  .object({ seconds_per_char: positiveNumber.optional(), use_input_seconds: z.boolean().optional() })
  .strict();

const tokenModelSchema = z.object({ input_per_1k: z.number().finite().min(0), output_per_1k: z.number().finite().min(0) }).strict();

/**
 * A pricing rule. `records` builds its model map: the document's null-prototype map (mapOf) for the workers, a plain
 * record for the catalogue's answer (a transform has no JSON Schema of its output) — one shape for both.
 */
function pricingRuleWith(records: (key: typeof freeKey, value: typeof tokenModelSchema) => z.ZodType<Record<string, z.output<typeof tokenModelSchema>>>) {
  return z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('fixed'), points, min_points: points.optional() }).strict(),
  z
    .object({
      mode: z.literal('duration'),
      divisor: positiveNumber.optional(),
      multiplier: positiveNumber.optional(),
      min_points: points.optional(),
      estimate: estimateSchema.optional(),
    })
    .strict()
    .refine((r) => (r.divisor === undefined) !== (r.multiplier === undefined), 'duration pricing needs exactly one of divisor or multiplier'),
  z
    .object({
      mode: z.literal('tokens'),
      models: records(freeKey, tokenModelSchema),
      min_points: points.optional(),
    })
    .strict(),
  z.object({ mode: z.literal('free') }).strict(),
]);
}

export const pricingRuleSchema = pricingRuleWith(mapOf);
/** The same rule as the catalogue shows it (GET /v1/pricing): what the workers parse, without the null-prototype step. */
export const pricingRuleView = pricingRuleWith((key, value) => z.record(key, value));

const ruleSchema = z
  .object({
    delta: z.number().int().min(-2_147_483_648).max(2_147_483_647),
    cooldown_seconds: z.number().int().min(0).default(0),
    daily_cap: z.number().int().positive().optional(),
    single_cap: z.number().int().positive().optional(),
    per_unit: z.boolean().default(false),
    enabled: z.boolean().default(true),
  })
  .strict();

const INT32_MAX = 2_147_483_647;

const rewardGrantSchema = z.object({ asset: name, amount: z.number().int().positive().max(Number.MAX_SAFE_INTEGER) }).strict();

const affinitySchema = z
  .object({
    settings: z
      .object({
        max_affinity: z.number().int().positive().max(2_147_483_647).default(1000),
        timezone: timezone.optional(),
        global_daily_cap: z.number().int().positive().max(INT32_MAX).optional(),
        decay: z
          .object({
            after_idle_days: z.number().int().min(0).max(36_500),
            per_day: z.number().int().min(0).max(INT32_MAX),
            floor: z.number().int().min(0).max(INT32_MAX).default(0),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({ max_affinity: 1000 }),
    rules: mapOf(name, ruleSchema).prefault({}),
    levels: z
      // Levels, thresholds and scores are 32-bit integer columns (affinity_devices, affinity_granted_levels).
      .array(z.object({ level: z.number().int().min(0).max(INT32_MAX), threshold: z.number().int().min(0).max(INT32_MAX), rewards: z.array(rewardGrantSchema).default([]) }).strict())
      .default([{ level: 1, threshold: 0, rewards: [] }]),
  })
  .strict();

const productSchema = z
  .object({
    asset: name,
    amount: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    price_cents: z.number().int().min(0),
    original_price_cents: z.number().int().min(0).optional(),
    active: z.boolean().default(true),
  })
  .strict();

const rewardRuleSchema = z
  .object({
    versions: z.array(z.string().min(1)).min(1),
    asset: name,
    amount: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    daily_cap: z.number().int().positive().optional(),
  })
  .strict();

export const configDocumentSchema = z
  .object({
    timezone: timezone.default('Asia/Shanghai'),
    // `prefault`, not `default`: the empty map goes through mapOf's transform and is null-prototype too.
    assets: mapOf(name, assetSchema).prefault({}),
    pricing: mapOf(name, mapOf(name, pricingRuleSchema)).prefault({}),
    affinity: affinitySchema.optional(),
    products: mapOf(name, productSchema).prefault({}),
    rewards: mapOf(freeKey, rewardRuleSchema).prefault({}),
    // --- alerts & webhooks (v2, CONTRACT §6): schemas and checks live in alerts-webhooks.ts ---
    alerts: alertsSchema,
    webhooks: webhooksSchema,
    // --- end alerts & webhooks ---
  })
  .strict()
  .superRefine((doc, ctx) => {
    // --- alerts & webhooks (v2) ---
    for (const issue of alertsAndWebhooksIssues(doc.alerts, doc.webhooks, (a) => Object.hasOwn(doc.assets, a))) ctx.addIssue({ code: 'custom', ...issue });
    // --- end alerts & webhooks ---
    for (const asset of Object.keys(doc.pricing)) {
      if (!doc.assets[asset]) ctx.addIssue({ code: 'custom', path: ['pricing', asset], message: `asset ${asset} is not declared under assets` });
    }
    for (const [sku, p] of Object.entries(doc.products)) {
      if (!doc.assets[p.asset]) ctx.addIssue({ code: 'custom', path: ['products', sku, 'asset'], message: `asset ${p.asset} is not declared` });
    }
    for (const [type, r] of Object.entries(doc.rewards)) {
      if (!doc.assets[r.asset]) ctx.addIssue({ code: 'custom', path: ['rewards', type, 'asset'], message: `asset ${r.asset} is not declared` });
    }
    const levels = doc.affinity?.levels ?? [];
    const seen = new Set<number>();
    levels.forEach((l, i) => {
      if (seen.has(l.level)) ctx.addIssue({ code: 'custom', path: ['affinity', 'levels', i], message: `level ${l.level} appears twice` });
      seen.add(l.level);
      for (const r of l.rewards) {
        if (!doc.assets[r.asset]) ctx.addIssue({ code: 'custom', path: ['affinity', 'levels', i, 'rewards'], message: `asset ${r.asset} is not declared` });
      }
    });
  });

export type ConfigDocument = z.infer<typeof configDocumentSchema>;
export type PricingRule = z.infer<typeof pricingRuleSchema>;
export type AffinityConfig = z.infer<typeof affinitySchema>;
export type AffinityRule = z.infer<typeof ruleSchema>;

export class ConfigInvalidError extends Error {
  constructor(readonly issues: { path: string; message: string }[]) {
    super(`config document refused: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`);
    this.name = 'ConfigInvalidError';
  }
}

/** Deeper than any valid document nests (about six levels); a deeper one is refused before zod walks it. */
const MAX_DEPTH = 32;

/**
 * Keys no document may use, found before zod parses: `__proto__` (JSON.parse and YAML make it an own key, which a
 * plain object assignment would turn into a prototype, and zod silently drops), at any depth. Iterative, so a
 * hostile nesting cannot overflow the stack; nesting beyond MAX_DEPTH is refused as such.
 */
function reservedKeyIssues(input: unknown): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  const stack: { value: unknown; path: string[] }[] = [{ value: input, path: [] }];
  while (stack.length > 0 && issues.length < 10) {
    const { value, path } = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (path.length >= MAX_DEPTH) {
      issues.push({ path: path.join('.'), message: `nested deeper than ${MAX_DEPTH} levels` });
      continue;
    }
    for (const key of Object.keys(value)) {
      if (key === '__proto__') issues.push({ path: [...path, key].join('.'), message: '__proto__ is not allowed as a key' });
      else stack.push({ value: (value as Record<string, unknown>)[key], path: [...path, key] });
    }
  }
  return issues;
}

export function parseConfigDocument(input: unknown): ConfigDocument {
  const reserved = reservedKeyIssues(input);
  if (reserved.length > 0) throw new ConfigInvalidError(reserved);
  const parsed = configDocumentSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigInvalidError(parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  }
  return parsed.data;
}

/** An empty document: what is in force before any config was applied. */
export const EMPTY_CONFIG: ConfigDocument = parseConfigDocument({});
