// Maintenance's own schedules (the tasks are in tasks.ts; features register theirs in their register.ts).
import { addSchedule } from '../scheduler.ts';

// Dead letters past their retention or over the cap (retention.ts); hourly is plenty for a table that grows slowly.
addSchedule({ id: 'dead-letters', task: 'dead-letters', every: 60 * 60_000 });
