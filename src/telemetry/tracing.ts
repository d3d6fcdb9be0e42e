import { trace, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { BullMQOtel } from 'bullmq-otel';
import type { Env } from '../config/env.ts';
import { setBullmqTelemetry } from './bullmq.ts';

/**
 * Tracing: off unless OTEL_EXPORTER_OTLP_ENDPOINT is set. Off means free — no tracer provider, BullMQ gets no
 * `telemetry` option (it then skips its tracing entirely), and the transaction wrappers take one boolean
 * check per batch. On: a Node tracer provider (AsyncLocalStorage context, W3C propagation) exporting over
 * OTLP/HTTP in batches; BullMQ carries the context from the producer's `add` into the job, so one trace runs
 * from the SDK's `charge()` through the worker to the transaction and its SQL round trips.
 */
let provider: NodeTracerProvider | undefined;

export const TRACER_NAME = 'tally';

/** The tracer tally's own spans use, or undefined while tracing is off. */
export function tallyTracer(): Tracer | undefined {
  return provider ? trace.getTracer(TRACER_NAME) : undefined;
}

function start(processor: BatchSpanProcessor | SimpleSpanProcessor, serviceName: string): void {
  provider = new NodeTracerProvider({ resource: resourceFromAttributes({ 'service.name': serviceName }), spanProcessors: [processor] });
  provider.register();
  setBullmqTelemetry(new BullMQOtel({ tracerName: 'bullmq' }));
}

/** Starts tracing when the environment asks for it (once per process); the returned close flushes what is buffered. */
export function startTracing(env: Pick<Env, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_SERVICE_NAME'>): { close(): Promise<void> } {
  if (!provider && env.OTEL_EXPORTER_OTLP_ENDPOINT) {
    const url = `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`;
    start(new BatchSpanProcessor(new OTLPTraceExporter({ url })), env.OTEL_SERVICE_NAME);
  }
  return { close: async () => void (await provider?.forceFlush().catch(() => {})) };
}

/** Tests: tracing on, every span handed to `exporter` as it ends (e.g. an InMemorySpanExporter). */
export function startTracingWith(exporter: SpanExporter, serviceName = 'tally'): NodeTracerProvider {
  if (!provider) start(new SimpleSpanProcessor(exporter), serviceName);
  return provider!;
}
