import '../src/modules.ts';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracingWith } from '../src/telemetry/tracing.ts';
import { createWorld, type TestWorld } from './helpers/env.ts';
import { startTally, waitFor, type InProcessTally } from './helpers/tally.ts';

// Tracing on for this test process, every span kept in memory; before tally makes any Queue or Worker.
const exporter = new InMemorySpanExporter();
const provider = startTracingWith(exporter);
let world: TestWorld;
let tally: InProcessTally;

beforeAll(async () => {
  world = await createWorld();
  await world.applyExampleConfig();
  tally = await startTally(world);
}, 120_000);

afterAll(async () => {
  await tally?.stop();
  await world?.drop();
  await provider.shutdown();
});

const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const traceOf = (s: ReadableSpan) => s.spanContext().traceId;

async function spansOfTrace(traceId: string, until: (spans: ReadableSpan[]) => boolean): Promise<ReadableSpan[]> {
  return waitFor('the spans to end', async () => {
    await provider.forceFlush();
    const spans = exporter.getFinishedSpans().filter((s) => traceOf(s) === traceId);
    return until(spans) ? spans : undefined;
  });
}

describe('tracing', () => {
  it("one trace runs from the SDK's charge() through the worker to the ledger transaction and its SQL", async () => {
    await tally.producer.grant({ event_id: 'tr-g1', user_id: 'tia', asset: 'points', amount: 100, source: 'gift' }, { wait: true });
    exporter.reset();
    const result = await tally.producer.charge(
      { event_id: 'tr-c1', user_id: 'tia', asset: 'points', source_type: 'script', source_id: 's1', policy: 'guarded' },
      { wait: true },
    );
    expect(result).toMatchObject({ outcome: 'applied' });
    const add = await waitFor('the producer span', async () => exporter.getFinishedSpans().find((s) => s.name === 'add charges.charge'));
    const spans = await spansOfTrace(traceOf(add), (ss) => ss.some((s) => s.name === 'tally.ledger.transaction') && ss.some((s) => s.name === 'process charges'));
    const byName = (n: string) => spans.filter((s) => s.name === n);
    const [processSpan] = byName('process charges');
    const [txn] = byName('tally.ledger.transaction');
    const [pgTxn] = byName('pg transaction');
    // The chain: charge() → BullMQ add (producer) → process (consumer, in the worker) → transaction → SQL.
    expect(parentOf(add)).toBeUndefined(); // the trace starts at charge()
    expect(parentOf(processSpan!)).toBe(add.spanContext().spanId);
    expect(parentOf(txn!)).toBe(processSpan!.spanContext().spanId);
    expect(txn!.attributes['tally.batch.size']).toBe(1);
    expect(parentOf(pgTxn!)).toBe(txn!.spanContext().spanId);
    const queries = spans.filter((s) => s.name.startsWith('pg ') && s.name !== 'pg transaction');
    expect(queries.length).toBeGreaterThanOrEqual(3);
    for (const q of queries) {
      expect(parentOf(q)).toBe(pgTxn!.spanContext().spanId);
      expect(q.attributes['db.system.name']).toBe('postgresql');
      // Statement text with placeholders, never values: the user id never reaches a span.
      expect(JSON.stringify(q.attributes)).not.toContain('tia');
    }
    expect(queries.map((q) => q.attributes['db.operation.name'])).toEqual(expect.arrayContaining(['SELECT', 'INSERT']));
  });

  it('a batch of several jobs: the transaction joins the first job’s trace and links the others', async () => {
    exporter.reset();
    const users = ['ua', 'ub', 'uc', 'ud', 'ue', 'uf'];
    await tally.producer.grantBulk(users.map((u) => ({ event_id: `tr-b-${u}`, user_id: u, asset: 'points', amount: 5, source: 'gift' })), { batch: false });
    const spans = await waitFor('the batch spans', async () => {
      await provider.forceFlush();
      const ss = exporter.getFinishedSpans();
      return ss.filter((s) => s.name === 'process grants').length === users.length ? ss : undefined;
    });
    const processes = spans.filter((s) => s.name === 'process grants');
    const txns = spans.filter((s) => s.name === 'tally.ledger.transaction');
    // Every job's trace reaches a transaction: as its parent, or through a link.
    for (const p of processes) {
      const id = p.spanContext().spanId;
      const joined = txns.some((t) => parentOf(t) === id || t.links.some((l) => l.context.spanId === id));
      expect(joined).toBe(true);
    }
  });

  it('the affinity transaction is traced the same way', async () => {
    exporter.reset();
    await tally.producer.affinityEvent({ event_id: 'tr-a1', user_id: 'tia', device_id: 'd1', rule_key: 'chat', source: 'test' }, { wait: true });
    const add = await waitFor('the producer span', async () => exporter.getFinishedSpans().find((s) => s.name === 'add affinity-events.affinity.event'));
    const spans = await spansOfTrace(traceOf(add), (ss) => ss.some((s) => s.name === 'tally.affinity.transaction') && ss.some((s) => s.name === 'process affinity-events'));
    expect(spans.map((s) => s.name)).toEqual(expect.arrayContaining(['process affinity-events', 'tally.affinity.transaction', 'pg transaction']));
  });
});
