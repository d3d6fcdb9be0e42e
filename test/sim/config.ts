/**
 * The config documents the simulation applies (CONTRACT §6). A run starts with the base document; a `config`
 * operation applies a variant: other prices (price versions by occurred_at), a pricing rule, reward rule,
 * affinity rule or asset removed, a reward rule re-versioned. Every document carries the run's own product,
 * so each run's first apply is a new version even when the previous run ended on the same settings.
 */
import type { ConfigDoc, PriceRule } from './model/config.ts';

export interface ConfigToggles {
  /** tts seconds per point: 10 (base) or 4 — a price version. */
  ttsDivisor: 10 | 4;
  /** llm prices: A (base), B (other prices and a `default` model). */
  llm: 'A' | 'B';
  /** video pricing present (false: a charge for video without amount is bad input). */
  video: boolean;
  /** forum.post.liked: versions 1,2 (base) | re-versioned to 2,3 | removed. */
  liked: 'v12' | 'v23' | 'off';
  /** The `chat` affinity rule: present | disabled | removed. */
  chat: 'on' | 'disabled' | 'off';
  /** The `gems` asset (only ever granted and charged by explicit amounts). */
  gems: boolean;
}

export const BASE_TOGGLES: ConfigToggles = { ttsDivisor: 10, llm: 'A', video: true, liked: 'v12', chat: 'on', gems: true };

export const TIMEZONE = 'Asia/Shanghai';

export function configDocument(t: ConfigToggles, runId: string): ConfigDoc {
  const assets: ConfigDoc['assets'] = { points: { default_expiry_days: 2 }, credits: { default_expiry_days: null } };
  if (t.gems) assets.gems = { default_expiry_days: null };
  const points: NonNullable<ConfigDoc['pricing']>[string] = {
    script: { mode: 'fixed', points: 5 },
    tts: { mode: 'duration', divisor: t.ttsDivisor, min_points: 1, estimate: { seconds_per_char: 0.25 } },
    caption: { mode: 'free' },
  };
  if (t.video) points.video = { mode: 'duration', multiplier: 1.5, min_points: 2, estimate: { use_input_seconds: true } };
  const llm: PriceRule =
    t.llm === 'A'
      ? { mode: 'tokens' as const, models: { 'gpt-4o-mini': { input_per_1k: 1, output_per_1k: 4 } }, min_points: 1 }
      : { mode: 'tokens' as const, models: { 'gpt-4o-mini': { input_per_1k: 0.5, output_per_1k: 3 }, default: { input_per_1k: 2, output_per_1k: 8 } }, min_points: 1 };
  const rules: NonNullable<NonNullable<ConfigDoc['affinity']>['rules']> = {
    gift: { delta: 15, per_unit: true, single_cap: 45, cooldown_seconds: 0, daily_cap: 60 },
    rude: { delta: -10, single_cap: 8, cooldown_seconds: 0 },
    poke: { delta: 40, cooldown_seconds: 3600 },
  };
  if (t.chat !== 'off') rules.chat = { delta: 2, cooldown_seconds: 60, daily_cap: 20, single_cap: 10, ...(t.chat === 'disabled' ? { enabled: false } : {}) };
  const rewards: NonNullable<ConfigDoc['rewards']> = { 'forum.post.imported': { versions: ['1'], asset: 'credits', amount: 5 } };
  if (t.liked !== 'off') rewards['forum.post.liked'] = { versions: t.liked === 'v12' ? ['1', '2'] : ['2', '3'], asset: 'credits', amount: 1, daily_cap: 3 };
  return {
    timezone: TIMEZONE,
    assets,
    pricing: { points, credits: { llm } },
    affinity: {
      settings: { max_affinity: 300, timezone: TIMEZONE, global_daily_cap: 100, decay: { after_idle_days: 2, per_day: 7, floor: 10 } },
      rules,
      levels: [
        { level: 1, threshold: 0 },
        { level: 2, threshold: 50, rewards: [{ asset: 'credits', amount: 20 }] },
        { level: 3, threshold: 150, rewards: [{ asset: 'credits', amount: 30 }, { asset: 'credits', amount: 5 }] },
        { level: 4, threshold: 280, rewards: [{ asset: 'credits', amount: 100 }] },
      ],
    },
    products: { [`sim-${runId}`]: { asset: 'credits', amount: 100, price_cents: 100 } },
    rewards,
  };
}
