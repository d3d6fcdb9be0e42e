/**
 * The config document as the model reads it (CONTRACT §6), with the defaults the contract and README state
 * filled in where the model asks for them. Only the parts the simulation uses are typed.
 */
export type PriceRule =
  | { mode: 'fixed'; points: number; min_points?: number }
  | {
      mode: 'duration';
      divisor?: number;
      multiplier?: number;
      min_points?: number;
      estimate?: { seconds_per_char?: number; use_input_seconds?: boolean };
    }
  | { mode: 'tokens'; models: Record<string, { input_per_1k: number; output_per_1k: number }>; min_points?: number }
  | { mode: 'free' };

export interface AffinityRule {
  delta: number;
  cooldown_seconds?: number;
  daily_cap?: number;
  single_cap?: number;
  per_unit?: boolean;
  enabled?: boolean;
}

export interface Level {
  level: number;
  threshold: number;
  rewards?: { asset: string; amount: number }[];
}

export interface ConfigDoc {
  timezone?: string;
  assets: Record<string, { default_expiry_days?: number | null }>;
  pricing?: Record<string, Record<string, PriceRule>>;
  affinity?: {
    settings?: {
      max_affinity?: number;
      timezone?: string;
      global_daily_cap?: number;
      decay?: { after_idle_days: number; per_day: number; floor?: number };
    };
    rules?: Record<string, AffinityRule>;
    levels?: Level[];
  };
  products?: Record<string, unknown>;
  rewards?: Record<string, { versions: string[]; asset: string; amount: number; daily_cap?: number }>;
}

/** §6: `timezone: Asia/Shanghai` is the example; README: the document's timezone defaults to it. */
export const timezoneOf = (doc: ConfigDoc): string => doc.timezone ?? 'Asia/Shanghai';

/** §6: "natural days for caps (affinity may override in its settings)". */
export const affinityTimezoneOf = (doc: ConfigDoc): string => doc.affinity?.settings?.timezone ?? timezoneOf(doc);

/** README: max_affinity defaults to 1000; a document without levels has one level 1 at threshold 0. */
export const maxAffinityOf = (doc: ConfigDoc): number => doc.affinity?.settings?.max_affinity ?? 1000;
export const levelsOf = (doc: ConfigDoc): Level[] => doc.affinity?.levels ?? [{ level: 1, threshold: 0 }];

/** Stable JSON (sorted keys): equal documents, equal text. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}
