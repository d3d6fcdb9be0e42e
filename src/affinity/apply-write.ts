import type { Tx } from '../db/client.ts';
import { recordDeadLetters } from '../ledger/sql/dead-letters.ts';
import { insertOutbox } from '../ledger/sql/outbox.ts';
import { insertProcessed } from '../ledger/sql/processed-events.ts';
import type { ApplyState } from './apply-state.ts';
import { addDaily, upsertRuleStates } from './sql/counters.ts';
import { updateDevices } from './sql/devices.ts';
import { insertGrantedLevels } from './sql/granted-levels.ts';
import { insertLog } from './sql/log.ts';

/** Writes what the decisions left in the state with set-based statements, in one round trip. */
export async function writeDecisions(tx: Tx, st: ApplyState): Promise<void> {
  const w = st.writes;
  const changed = [...st.devices.values()].filter((d) => d.changed);
  await Promise.all([
    updateDevices(
      tx,
      changed.map((d) => ({
        user_id: d.userId,
        device_id: d.deviceId,
        value: d.value,
        level: d.level,
        last_active_at: d.lastActiveAt === null ? null : new Date(d.lastActiveAt).toISOString(),
        decayed_through: d.decayedThrough,
      })),
    ),
    upsertRuleStates(tx, [...w.ruleStates.values()]),
    addDaily(tx, [...w.dailyAdds.values()].map((a) => ({ user_id: a.user_id, device_id: a.device_id, day: a.day, scope: a.scope, add: String(a.add) }))),
    insertLog(tx, w.log),
    insertGrantedLevels(tx, w.grantedLevels),
    insertProcessed(tx, w.processed),
    insertOutbox(tx, w.outbox),
    w.deadLetters.length > 0 ? recordDeadLetters(tx, w.deadLetters) : Promise.resolve(),
  ]);
}
