import { context, SpanKind, SpanStatusCode, trace, type Context, type Link } from '@opentelemetry/api';
import type { Sql } from '../db/client.ts';
import { tracedSql } from './sql-spans.ts';
import { tallyTracer } from './tracing.ts';

/**
 * The trace context each batched item was submitted in (its job's `process` span), so the transaction that
 * applies it can join that trace. Weak: an item forgotten by the batcher takes its context with it.
 */
const submittedIn = new WeakMap<object, Context>();

/** Remembers the caller's trace context for `item` (call it where the worker submits the item). Free when off. */
export function carryTrace<T extends object>(item: T): T {
  if (tallyTracer()) submittedIn.set(item, context.active());
  return item;
}

/**
 * Wraps a group-commit run (`runLedgerTransaction`, `runAffinityTransaction`) in a span. A batch carries the
 * events of many jobs, so the span is the child of its first item's job span (that trace shows the whole
 * path, producer to SQL) and links to the others' (each of their traces can find it). Inside, SQL round trips
 * get spans of their own. Off: the run is called as is.
 */
export function tracedRun<I extends object, O, T>(name: string, sql: Sql, run: (sql: Sql, items: I[], turn: T) => Promise<O[]>): (items: I[], turn: T) => Promise<O[]> {
  return (items, turn) => {
    const tracer = tallyTracer();
    if (!tracer) return run(sql, items, turn);
    const contexts = items.map((i) => submittedIn.get(i));
    const parent = contexts.find((c) => c !== undefined) ?? context.active();
    const links: Link[] = [];
    for (const c of contexts) {
      const sc = c && trace.getSpanContext(c);
      if (sc && c !== parent && links.length < 128) links.push({ context: sc });
    }
    const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, links, attributes: { 'tally.batch.size': items.length } }, parent);
    return context.with(trace.setSpan(parent, span), async () => {
      try {
        return await run(tracedSql(sql), items, turn);
      } catch (err) {
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message?.slice(0, 200) });
        throw err;
      } finally {
        span.end();
      }
    });
  };
}
