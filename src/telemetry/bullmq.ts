import { ProxyTracerProvider, trace } from '@opentelemetry/api';
import { BullMQOtel } from 'bullmq-otel';

/**
 * BullMQ's `telemetry` option, kept apart from tracing.ts so the producer SDK (src/producers) stays light for
 * the services that import it: this file pulls in only the OpenTelemetry API.
 *
 * Set while tally's tracing is on. In another service using the SDK, it is also set when that service has
 * registered a tracer provider of its own (before making its first TallyProducer queue), so its traces run
 * on into tally's workers. Otherwise undefined: BullMQ then skips its tracing entirely, at no cost.
 */
let own: BullMQOtel | undefined;
let host: BullMQOtel | undefined;

export function setBullmqTelemetry(t: BullMQOtel | undefined): void {
  own = t;
}

export function bullmqTelemetry(): BullMQOtel | undefined {
  if (own) return own;
  const registered = trace.getTracerProvider();
  const delegate = registered instanceof ProxyTracerProvider ? registered.getDelegate() : registered;
  if (delegate.constructor.name === 'NoopTracerProvider') return undefined;
  return (host ??= new BullMQOtel({ tracerName: 'bullmq' }));
}
