// The money-flow rollup (issue 12): its compaction as a maintenance task, scheduled. See docs/observability.md.
import { registerMaintenanceTask } from '../maintenance/tasks.ts';
import { addSchedule } from '../scheduler.ts';
import { compactMoneyFlow } from './rollup.ts';

/** Often enough that a scrape sums at most a minute of deltas; each run is one statement over that minute. */
export const COMPACT_EVERY_MS = 60_000;

registerMaintenanceTask('money-flow', ({ sql }) => compactMoneyFlow(sql));
addSchedule({ id: 'money-flow', task: 'money-flow', every: COMPACT_EVERY_MS });
