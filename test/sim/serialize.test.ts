import { describe, expect, it } from 'vitest';
import { BASE_TOGGLES, configDocument } from './config.ts';
import { Model, type Job } from './model/model.ts';
import type { PlannedJob } from './plan.ts';
import { fitOrder } from './serialize.ts';
import type { Observation } from './system.ts';

/**
 * The order search of one user's concurrent jobs (serialize.ts), without tally: the wave of seed 20059 — a
 * post-paid charge of 1, its refund, and a grant already expired when applied, for one user in one wave. Every
 * order that keeps the refund after its charge and the grant outside the pair gives the results tally gave, so
 * only the transaction ids tell which order tally applied (and so lists its entries in).
 */
const NOW = Date.parse('2030-01-20T12:43:15.722Z');
const USER = 'r.z';

function wave(): PlannedJob[] {
  const job = (queue: Job['queue'], payload: Record<string, unknown>, after?: string): PlannedJob => ({ user: USER, job: { queue, payload, timestamp: NOW }, replay: false, configs: 1, ...(after ? { after } : {}) });
  return [
    job('charges', { type: 'charge', event_id: 'r.c1', user_id: USER, source_id: 'r.c1', policy: 'postpaid', occurred_at: new Date(NOW).toISOString(), asset: 'gems', source_type: 'shop', amount: 1 }),
    job('charges', { type: 'refund', event_id: 'r.rf2', charge_event_id: 'r.c1' }, 'r.c1'),
    job('grants', { type: 'grant', event_id: 'r.g3', user_id: USER, asset: 'gems', amount: 34, source: 'gift', expires_at: new Date(NOW - 10 * 3_600_000 - 1).toISOString() }),
  ];
}

/** tally's results, with the grant's entry id `grantTid` (the charge's is 4, the refund's 6). */
function results(grantTid: string): Observation[] {
  return [
    { ok: true, result: { outcome: 'applied', transaction_id: '4', amount: 1, balance_before: 0, balance_after: -1 } },
    { ok: true, result: { outcome: 'applied', transaction_id: '6', amount: 1, requested: 1, balance_before: -1, balance_after: 0 } },
    { ok: true, result: { outcome: 'applied', transaction_id: grantTid, amount: 34, balance_after: 0, expired: 34 } },
  ];
}

function model(): Model {
  const m = new Model(180_000);
  m.now = NOW - 3_600_000;
  m.applyConfig(configDocument(BASE_TOGGLES, 'r'));
  m.now = NOW;
  return m;
}

const entryOrder = (fit: ReturnType<typeof fitOrder>) => ('state' in fit ? fit.state.accounts.get('gems')!.entries.map((e) => `${e.kind} ${e.eventId}`) : fit.why);

describe('the order search takes the order tally applied (transaction ids), among those that fit the results', () => {
  it('the grant committed first (seed 20059): grant, charge, refund — not the enqueue order', () => {
    const fit = fitOrder(model(), USER, wave(), results('1'), new Map());
    expect('order' in fit && fit.order).toEqual([2, 0, 1]);
    expect(entryOrder(fit)).toEqual(['grant r.g3', 'consume r.c1', 'refund r.rf2']);
  });

  it('the grant committed last: the enqueue order', () => {
    const fit = fitOrder(model(), USER, wave(), results('7'), new Map());
    expect(entryOrder(fit)).toEqual(['consume r.c1', 'refund r.rf2', 'grant r.g3']);
  });

  it('ids that put the grant between the charge and its refund contradict its balance_after: a divergence', () => {
    const fit = fitOrder(model(), USER, wave(), results('5'), new Map());
    expect('state' in fit).toBe(false);
    expect(entryOrder(fit)).toMatch(/transaction_id 5, lower than 6/);
  });
});
