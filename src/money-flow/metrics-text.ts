import type { MoneyFlow } from './rollup.ts';

/**
 * The money-flow families in Prometheus text format. They are deployment-wide totals kept in PostgreSQL, so
 * prom-client (which keeps per-process values) cannot hold them; every family is announced even with no sample.
 */
const FAMILIES: { name: string; type: 'counter' | 'gauge'; help: string; value: (f: MoneyFlow) => number }[] = [
  { name: 'tally_money_granted_total', type: 'counter', help: 'Amount granted (grants, rewards, orders, level rewards), by asset, in its smallest unit', value: (f) => f.granted },
  { name: 'tally_money_consumed_total', type: 'counter', help: 'Amount charged (gross of refunds), by asset', value: (f) => f.consumed },
  { name: 'tally_money_refunded_total', type: 'counter', help: 'Amount refunds gave back, by asset', value: (f) => f.refunded },
  { name: 'tally_money_expired_total', type: 'counter', help: 'Amount expired, by asset', value: (f) => f.expired },
  { name: 'tally_money_outstanding', type: 'gauge', help: 'Sum of the balances of accounts in credit (what users hold), by asset, as of their last ledger transaction', value: (f) => f.outstanding },
  { name: 'tally_money_debt', type: 'gauge', help: 'Sum of what overdrawn accounts owe, by asset', value: (f) => f.debt },
  { name: 'tally_money_held', type: 'gauge', help: 'Sum of active holds (reserved, not yet charged), by asset', value: (f) => f.held },
];

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export function moneyFlowText(flows: readonly MoneyFlow[] | undefined): string {
  if (!flows) return '';
  const lines: string[] = [];
  for (const fam of FAMILIES) {
    lines.push(`# HELP ${fam.name} ${fam.help}`, `# TYPE ${fam.name} ${fam.type}`);
    for (const f of flows) lines.push(`${fam.name}{asset="${esc(f.asset)}"} ${fam.value(f)}`);
  }
  return `${lines.join('\n')}\n`;
}
