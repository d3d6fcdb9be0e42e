/**
 * The demo's simulated users: what a few thousand people of a points/credits product do in a few minutes.
 * Deterministic per run id and user index (no Math.random), so a run can be reasoned about from its id.
 */
export interface DemoJob {
  queue: 'grants' | 'charges' | 'affinity-events';
  data: { type: string; event_id: string } & Record<string, unknown>;
}

/** A tiny deterministic PRNG (mulberry32): the same run id gives the same workload. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const demoUser = (run: string, i: number) => `demo-${run}-u${i}`;
export const STAR_DEVICE = 'robot-star';
export const starUser = (run: string) => `demo-${run}-star`;

/** Grants first (so most charges find something to burn), then charges, reward events and affinity events. */
export function demoWorkload(run: string, users: number): DemoJob[][] {
  const grants: DemoJob[] = [];
  const charges: DemoJob[] = [];
  const affinity: DemoJob[] = [];
  const ev = (kind: string, i: number, n = 0) => `demo-${run}-${kind}-${i}-${n}`;
  for (let i = 0; i < users; i++) {
    const r = rng(i * 7919 + run.length);
    const user = demoUser(run, i);
    grants.push({ queue: 'grants', data: { type: 'grant', event_id: ev('g', i), user_id: user, asset: 'points', amount: 100 + Math.floor(r() * 900), source: 'recharge' } });
    const buysCredits = r() < 0.35;
    if (buysCredits) {
      grants.push({ queue: 'grants', data: { type: 'grant', event_id: ev('gc', i), user_id: user, asset: 'credits', amount: 1000, source: 'purchase', source_id: `order-${run}-${i}` } });
    }
    if (r() < 0.2) {
      grants.push({
        queue: 'grants',
        data: { type: 'reward.event', event_id: ev('like', i), event_type: 'forum.post.liked', event_version: '1', receiver_user_id: user, source_ref_id: `post-${i}` },
      });
    }
    const nCharges = 1 + Math.floor(r() * 4);
    for (let n = 0; n < nCharges; n++) {
      const base = { type: 'charge', event_id: ev('c', i, n), user_id: user, source_id: `job-${i}-${n}`, policy: r() < 0.8 ? 'postpaid' : 'guarded' };
      const pick = r();
      if (buysCredits && pick < 0.3) {
        charges.push({ queue: 'charges', data: { ...base, asset: 'credits', source_type: 'llm', usage: { model: 'gpt-4o-mini', input_tokens: Math.floor(r() * 4000), output_tokens: Math.floor(r() * 1500) } } });
      } else if (pick < 0.55) {
        charges.push({ queue: 'charges', data: { ...base, asset: 'points', source_type: 'tts', usage: { seconds: Math.round(r() * 120) } } });
      } else if (pick < 0.8) {
        charges.push({ queue: 'charges', data: { ...base, asset: 'points', source_type: 'script' } });
      } else if (pick < 0.95) {
        charges.push({ queue: 'charges', data: { ...base, asset: 'points', source_type: 'video', usage: { seconds: Math.round(5 + r() * 60) } } });
      } else {
        charges.push({ queue: 'charges', data: { ...base, asset: 'points', source_type: 'caption' } });
      }
    }
    const nAffinity = 1 + Math.floor(r() * 3);
    for (let n = 0; n < nAffinity; n++) {
      const gift = r() < 0.25;
      affinity.push({
        queue: 'affinity-events',
        data: {
          type: 'affinity.event',
          event_id: ev('a', i, n),
          user_id: user,
          device_id: `robot-${i % 3}`,
          rule_key: gift ? 'gift' : 'chat',
          source: 'demo',
          ...(gift ? { metadata: { units: 1 + Math.floor(r() * 2) } } : {}),
        },
      });
    }
  }
  return [grants, charges, affinity];
}

/**
 * The level-up story: one user gifts on three past days (45 a day, under the gift rule's daily cap), so the
 * third gift crosses the level-2 threshold of 100 and earns its reward. Sent one by one, in order.
 */
export function starJourney(run: string, now = Date.now()): DemoJob[] {
  return [3, 2, 1].map((daysAgo) => ({
    queue: 'affinity-events' as const,
    data: {
      type: 'affinity.event',
      event_id: `demo-${run}-star-${daysAgo}`,
      user_id: starUser(run),
      device_id: STAR_DEVICE,
      rule_key: 'gift',
      source: 'demo',
      occurred_at: new Date(now - daysAgo * 86_400_000).toISOString(),
      metadata: { units: 3 },
    },
  }));
}

/** `[#########.........]  4,123/8,000  51%  1,234/s` on one terminal line. */
export function progressLine(label: string, done: number, total: number, startedAt: number): string {
  const width = 30;
  const frac = total === 0 ? 1 : Math.min(1, done / total);
  const filled = Math.round(frac * width);
  const rate = done / Math.max(0.001, (Date.now() - startedAt) / 1000);
  return `${label.padEnd(9)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} ${Math.round(frac * 100)
    .toString()
    .padStart(3)}%  ${Math.round(rate).toLocaleString('en-US')}/s`;
}
