import type { ChargeInput, SendOptions, TallyProducer } from './index.ts';

/** One chunk's usage as an LLM stream reports it (deltas). */
export interface UsageChunk {
  input_tokens?: number;
  output_tokens?: number;
  model?: string;
}

export type MeterBase = Omit<ChargeInput, 'usage' | 'amount'>;

/**
 * Sums the chunked usage reports of one LLM stream and emits exactly one charge for it: at `end()`, or at
 * `abort()` with what was counted so far. Later `end`/`abort` calls return the first one's promise, so a
 * stream that errors after it finished, or is aborted twice, is never charged twice (and the charge's
 * event_id makes a re-sent charge a no-op on the tally side anyway).
 *
 *   const meter = new UsageMeter(tally, { event_id: `llm-${requestId}`, user_id, asset: 'credits',
 *     source_type: 'llm', source_id: requestId, hold_id, model: 'gpt-4o-mini' });
 *   for await (const chunk of stream) meter.add(chunk.usage);
 *   await meter.end();
 *
 * Stream rule with a hold: a stream that ended without any usage report (`end()` with nothing counted)
 * sends the charge without usage, which settles the hold at its estimate. Pass `{ final }` to `end()` when
 * the provider reports authoritative totals at the end; they replace what the chunks summed.
 */
export class UsageMeter {
  private input = 0;
  private output = 0;
  private reports = 0;
  private model: string | undefined;
  private sent: Promise<unknown> | undefined;

  constructor(
    private readonly producer: Pick<TallyProducer, 'charge'>,
    private readonly base: MeterBase & { model?: string },
    private readonly sendOptions: SendOptions = {},
  ) {
    this.model = base.model;
  }

  /** Adds one chunk's usage (ignored once the charge was emitted). */
  add(chunk: UsageChunk | null | undefined): void {
    if (this.sent || !chunk) return;
    this.input += nonNegative(chunk.input_tokens);
    this.output += nonNegative(chunk.output_tokens);
    if (chunk.model) this.model = chunk.model;
    this.reports++;
  }

  get counted(): { input_tokens: number; output_tokens: number; reports: number } {
    return { input_tokens: this.input, output_tokens: this.output, reports: this.reports };
  }

  /** The stream finished: emits the one charge. */
  end(opts: { final?: UsageChunk } = {}): Promise<unknown> {
    if (opts.final && !this.sent) {
      this.input = nonNegative(opts.final.input_tokens ?? this.input);
      this.output = nonNegative(opts.final.output_tokens ?? this.output);
      if (opts.final.model) this.model = opts.final.model;
      this.reports++;
    }
    return this.emit(this.reports === 0 && this.base.hold_id !== undefined ? 'estimate' : 'counted');
  }

  /** The stream was cut short: emits the one charge with what was counted so far. */
  abort(): Promise<unknown> {
    return this.emit('counted');
  }

  private emit(mode: 'estimate' | 'counted'): Promise<unknown> {
    if (this.sent) return this.sent;
    const { model: _model, ...base } = this.base;
    const charge: ChargeInput = { ...base };
    if (mode === 'counted') {
      charge.usage = { input_tokens: this.input, output_tokens: this.output, ...(this.model ? { model: this.model } : {}) };
    }
    this.sent = this.producer.charge(charge, this.sendOptions);
    return this.sent;
  }
}

function nonNegative(n: number | undefined): number {
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}
