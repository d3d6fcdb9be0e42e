import type { ConfigDocument } from '../config/document.ts';
import type { LevelLike, RuleLike } from '../domain/affinity.ts';

export interface AffinitySettings {
  maxAffinity: number;
  timezone: string;
  globalDailyCap: number | undefined;
  decay: { afterIdleDays: number; perDay: number; floor: number } | undefined;
  rules: Record<string, RuleLike>;
  levels: LevelLike[];
}

/** What a document without an `affinity:` section means: no rules, max 1000, one level at 0. */
const DEFAULT_LEVELS: LevelLike[] = [{ level: 1, threshold: 0, rewards: [] }];

/** The affinity part of the config in force, defaults filled in; the timezone falls back to the document's. */
export function affinitySettingsOf(doc: ConfigDocument): AffinitySettings {
  const a = doc.affinity;
  const d = a?.settings.decay;
  return {
    maxAffinity: a?.settings.max_affinity ?? 1000,
    timezone: a?.settings.timezone ?? doc.timezone,
    globalDailyCap: a?.settings.global_daily_cap,
    decay: d ? { afterIdleDays: d.after_idle_days, perDay: d.per_day, floor: d.floor } : undefined,
    rules: a?.rules ?? (Object.create(null) as Record<string, never>), // null-prototype like the document's maps
    levels: a?.levels ?? DEFAULT_LEVELS,
  };
}
