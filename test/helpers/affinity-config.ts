/** The example config plus a cap-free rule, a disabled one, and more levels with rewards. */
export const AFFINITY_TEST_CONFIG = {
  timezone: 'Asia/Shanghai',
  assets: { points: { default_expiry_days: null }, credits: { default_expiry_days: null } },
  affinity: {
    settings: { max_affinity: 1000, timezone: 'Asia/Shanghai', global_daily_cap: 100, decay: { after_idle_days: 3, per_day: 5, floor: 0 } },
    rules: {
      chat: { delta: 2, cooldown_seconds: 60, daily_cap: 20, single_cap: 10 },
      gift: { delta: 15, per_unit: true, single_cap: 45, cooldown_seconds: 0, daily_cap: 60 },
      like: { delta: 30, cooldown_seconds: 0 },
      rude: { delta: -10, cooldown_seconds: 0 },
      off: { delta: 5, enabled: false },
    },
    levels: [
      { level: 1, threshold: 0 },
      { level: 2, threshold: 100, rewards: [{ asset: 'points', amount: 50 }] },
      { level: 3, threshold: 150, rewards: [{ asset: 'points', amount: 70 }, { asset: 'credits', amount: 5 }] },
      { level: 4, threshold: 200, rewards: [{ asset: 'points', amount: 100 }] },
      { level: 5, threshold: 900 },
    ],
  },
};
