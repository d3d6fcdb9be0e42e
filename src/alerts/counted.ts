import { recordAlertSent } from '../ops/job-stats.ts';
import type { AlertKind } from './messages.ts';

/** An alert that committed: counted as `tally_alerts_total{kind,asset}` (flushed to Redis by the worker role). */
export interface AlertSent {
  kind: AlertKind;
  asset: string;
}

/** Called after the commit that wrote the alerts: a rolled-back alert was never sent. */
export function alertsCommitted(alerts: readonly AlertSent[]): void {
  for (const a of alerts) recordAlertSent(a.kind, a.asset);
}
