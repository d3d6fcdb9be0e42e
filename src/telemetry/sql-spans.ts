import { context, SpanKind, SpanStatusCode, trace, type Context } from '@opentelemetry/api';
import type { Sql } from '../db/client.ts';
import { tallyTracer } from './tracing.ts';

/**
 * postgres.js has no OpenTelemetry instrumentation, so a traced transaction gets a `sql` whose transactions
 * hand out a `tx` that opens a span per query: from the moment the query is awaited (postgres.js sends it
 * then, pipelined with its neighbours) to its answer. The span carries the statement's text with `$n` for
 * parameters, never their values (user ids and payloads stay out of traces).
 */
const isTemplate = (a: unknown): a is TemplateStringsArray => Array.isArray(a) && 'raw' in (a as object);

function statement(strings: TemplateStringsArray): string {
  return strings.reduce((acc, s, i) => acc + (i > 0 ? `$${i}` : '') + s, '').replace(/\s+/g, ' ').trim().slice(0, 2000);
}

function instrument<Q extends object>(query: Q, strings: TemplateStringsArray, parent: Context): Q {
  const tracer = tallyTracer();
  if (!tracer || typeof (query as { then?: unknown }).then !== 'function') return query;
  const text = statement(strings);
  const operation = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? 'QUERY';
  const original = (query as unknown as PromiseLike<unknown>).then.bind(query);
  let span: ReturnType<typeof tracer.startSpan> | undefined;
  let ended = false;
  const end = (err?: unknown) => {
    if (ended || !span) return;
    ended = true;
    if (err) span.setStatus({ code: SpanStatusCode.ERROR, message: String((err as Error).message ?? err).slice(0, 200) });
    span.end();
  };
  (query as { then: unknown }).then = (onFulfilled?: (v: unknown) => unknown, onRejected?: (e: unknown) => unknown) => {
    span ??= tracer.startSpan(`pg ${operation}`, { kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'postgresql', 'db.operation.name': operation, 'db.query.text': text } }, parent);
    return original(
      (v) => (end(), onFulfilled ? onFulfilled(v) : v),
      (e) => {
        end(e);
        if (onRejected) return onRejected(e);
        throw e;
      },
    );
  };
  return query;
}

function tracedTx<T extends object>(tx: T, parent: Context): T {
  return new Proxy(tx, {
    apply(target, thisArg, args: unknown[]) {
      const result = Reflect.apply(target as (...a: unknown[]) => unknown, thisArg, args);
      return isTemplate(args[0]) && result && typeof result === 'object' ? instrument(result, args[0], parent) : result;
    },
  });
}

/** `sql` whose `begin(fn)` passes `fn` a traced transaction; everything else is the pool as is. */
export function tracedSql(sql: Sql): Sql {
  return new Proxy(sql, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== 'begin' || typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const tracer = tallyTracer();
        const span = tracer?.startSpan('pg transaction', { kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'postgresql' } }, context.active());
        // postgres.js calls the callback from its connection's events, outside this async context: the
        // transaction's context is handed to the callback and its queries explicitly.
        const txContext = span ? trace.setSpan(context.active(), span) : context.active();
        const fnIndex = args.findIndex((a) => typeof a === 'function');
        if (fnIndex >= 0 && span) {
          const fn = args[fnIndex] as (tx: object) => unknown;
          args[fnIndex] = (tx: object) => context.with(txContext, () => fn(tracedTx(tx, txContext)));
        }
        const p = (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        return span ? p.finally(() => span.end()) : p;
      };
    },
  });
}
