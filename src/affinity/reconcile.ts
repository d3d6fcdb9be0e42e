import type { Sql } from '../db/client.ts';
import type { Violation } from '../maintenance/reconcile.ts';
import { GLOBAL_SCOPE } from './apply-state.ts';

const LIMIT = 1000;

/**
 * Affinity invariants, named by device: the score = Σ of its logged changes; each log row continues the
 * previous one; each daily counter = Σ of the positive rule-event changes logged for that day and scope.
 */
export async function checkAffinity(sql: Sql): Promise<Violation[]> {
  const out: Violation[] = [];
  const scores = await sql<{ user_id: string; device_id: string; expected: bigint; actual: bigint }[]>`
    SELECT d.user_id, d.device_id, coalesce(l.total, 0)::bigint AS expected, d.value::bigint AS actual
    FROM affinity_devices d LEFT JOIN (
      SELECT user_id, device_id, sum(change) AS total FROM affinity_log GROUP BY user_id, device_id) l
      USING (user_id, device_id)
    WHERE coalesce(l.total, 0) <> d.value LIMIT ${LIMIT}`;
  for (const r of scores) {
    out.push({ check: 'affinity_value_equals_log', user_id: r.user_id, actual: String(r.actual), expected: String(r.expected), entry_id: `device ${r.device_id}` });
  }
  const chain = await sql<{ log_id: bigint; user_id: string; expected: number; actual: number }[]>`
    SELECT log_id, user_id, prev_after AS expected, before AS actual FROM (
      SELECT log_id, user_id, before,
        coalesce(lag(after) OVER (PARTITION BY user_id, device_id ORDER BY log_id), 0) AS prev_after
      FROM affinity_log) x
    WHERE prev_after <> before LIMIT ${LIMIT}`;
  for (const r of chain) {
    out.push({ check: 'affinity_log_chain', entry_id: `affinity_log ${r.log_id}`, user_id: r.user_id, expected: String(r.expected), actual: String(r.actual) });
  }
  const counters = await sql<{ user_id: string; device_id: string; day: string; scope: string; expected: bigint; actual: bigint }[]>`
    WITH logged AS (
      SELECT user_id, device_id, day, s.scope, sum(change) AS total
      FROM affinity_log, LATERAL (VALUES (rule_key), (${GLOBAL_SCOPE}::text)) AS s(scope)
      WHERE kind = 'event' AND change > 0
      GROUP BY user_id, device_id, day, s.scope)
    SELECT coalesce(c.user_id, l.user_id) AS user_id, coalesce(c.device_id, l.device_id) AS device_id,
      coalesce(c.day, l.day)::text AS day, coalesce(c.scope, l.scope) AS scope,
      coalesce(l.total, 0)::bigint AS expected, coalesce(c.positive_sum, 0)::bigint AS actual
    FROM affinity_daily c FULL JOIN logged l
      ON c.user_id = l.user_id AND c.device_id = l.device_id AND c.day = l.day AND c.scope = l.scope
    WHERE coalesce(l.total, 0) <> coalesce(c.positive_sum, 0) LIMIT ${LIMIT}`;
  for (const r of counters) {
    out.push({ check: 'affinity_daily_equals_log', user_id: r.user_id, entry_id: `device ${r.device_id} day ${r.day} scope ${r.scope}`, expected: String(r.expected), actual: String(r.actual) });
  }
  return out;
}
