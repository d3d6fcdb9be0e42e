import { z } from 'zod';

/**
 * The `alerts:` and `webhooks:` sections of the config document (CONTRACT §6 "Alerts and webhooks"), kept apart
 * from document.ts so the two grow independently. Validated strictly: a document with a typo here is refused
 * as a whole, like any other, rather than silently alerting nobody.
 */
const assetName = z.string().regex(/^[A-Za-z0-9._@-]{1,128}$/, 'ids use 1–128 chars of [A-Za-z0-9._@-]');
const amount = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

/** The event types a webhook may subscribe to: the push message types (§5) plus `alert`. A closed list. */
export const WEBHOOK_EVENT_TYPES = ['alert', 'level_up', 'level_down', 'balance_changed', 'affinity_update'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

const lowBalanceSchema = z.object({ asset: assetName, below: amount }).strict();
const expiringSoonSchema = z
  .object({ asset: assetName, within_days: z.number().int().min(1).max(3650), min_amount: amount.default(1) })
  .strict();
const overdrawnSchema = z.object({ asset: assetName }).strict();

export const alertsSchema = z
  .object({
    low_balance: z.array(lowBalanceSchema).max(100).default([]),
    expiring_soon: z.array(expiringSoonSchema).max(100).default([]),
    overdrawn: z.array(overdrawnSchema).max(100).default([]),
  })
  .strict()
  .default({ low_balance: [], expiring_soon: [], overdrawn: [] });

/** A webhook URL: http or https, absolute, no credentials (they would end up in logs and Bull Board), no fragment. */
const webhookUrl = z
  .string()
  .max(2048)
  .superRefine((raw, ctx) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not an absolute URL' });
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: 'webhook urls must be http or https' });
    if (url.username || url.password) ctx.addIssue({ code: 'custom', message: 'webhook urls must not carry credentials (the signature authenticates)' });
    if (url.hash) ctx.addIssue({ code: 'custom', message: 'webhook urls must not have a #fragment' });
  });

export const webhookSchema = z
  .object({
    id: assetName,
    url: webhookUrl,
    // The HMAC key: at least 128 bits of typing; whitespace-only or padded secrets are typos waiting to happen.
    secret: z
      .string()
      .min(16, 'webhook secrets must be at least 16 characters')
      .max(512)
      .refine((s) => s.trim() === s, 'webhook secrets must not start or end with whitespace'),
    events: z
      .array(z.enum(WEBHOOK_EVENT_TYPES))
      .min(1)
      .refine((e) => new Set(e).size === e.length, 'an event type is listed twice'),
    /** Default false: loopback, private, link-local… targets are refused (SSRF). */
    allow_private_network: z.boolean().default(false),
  })
  .strict();

export const webhooksSchema = z.array(webhookSchema).max(100).default([]);

export type AlertsConfig = z.infer<typeof alertsSchema>;
export type WebhookConfig = z.infer<typeof webhookSchema>;

type Issue = { path: (string | number)[]; message: string };

/** Cross-field checks: every asset declared, no duplicate rule or webhook id. */
export function alertsAndWebhooksIssues(alerts: AlertsConfig, webhooks: WebhookConfig[], hasAsset: (asset: string) => boolean): Issue[] {
  const issues: Issue[] = [];
  for (const kind of ['low_balance', 'expiring_soon', 'overdrawn'] as const) {
    const seen = new Set<string>();
    alerts[kind].forEach((rule, i) => {
      if (!hasAsset(rule.asset)) issues.push({ path: ['alerts', kind, i, 'asset'], message: `asset ${rule.asset} is not declared` });
      const key = JSON.stringify(rule);
      if (seen.has(key)) issues.push({ path: ['alerts', kind, i], message: 'the same alert rule appears twice' });
      seen.add(key);
    });
  }
  const ids = new Set<string>();
  webhooks.forEach((w, i) => {
    if (ids.has(w.id)) issues.push({ path: ['webhooks', i, 'id'], message: `webhook id ${w.id} appears twice` });
    ids.add(w.id);
  });
  return issues;
}
