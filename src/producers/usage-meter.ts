import { USAGE_LIMITS, chargeSchema } from '../queues/charges/schema.ts';
import { describeIssues } from '../queues/common.ts';
import { PayloadError, type ChargeInput, type SendOptions, type TallyProducer } from './index.ts';

/** One chunk's usage as an LLM stream reports it (deltas). */
export interface UsageChunk {
  input_tokens?: number;
  output_tokens?: number;
  /** What the provider calls the model (e.g. a dated name): reported, never billed by (see `model`). */
  model?: string;
}

export type MeterBase = Omit<ChargeInput, 'usage' | 'amount'> & {
  /** The model the request was made for, as the pricing names it: every charge of this meter is priced by it. */
  model: string;
};

/**
 * Sums the chunked usage reports of one LLM stream and emits exactly one charge for it, at `end()` or `abort()`.
 *
 *   const meter = new UsageMeter(tally, { event_id: `llm-${requestId}`, user_id, asset: 'credits',
 *     source_type: 'llm', source_id: requestId, hold_id, model: 'gpt-4o-mini' });
 *   for await (const chunk of stream) meter.add(chunk.usage);
 *   await meter.end();            // or meter.abort() when the stream was cut short
 *
 * The stream rule (docs/affinity.md, "UsageMeter"): `end()` and `abort()` bill the tokens counted; when nothing
 * was counted (no chunk reported a token, and no final report was given) a meter with a hold settles it at the
 * hold's estimate — a stream cut before its usage arrived is not free — and a meter without a hold bills 0/0
 * tokens of its model (the price rule's min_points). A meter can never emit an unpriceable charge: its model
 * is fixed at creation (chunks cannot remove or replace it), its charge is validated at creation, and counts
 * are whole, non-negative and at most 2^53−1.
 *
 * The charge is decided once, at the first `end()`/`abort()`; chunks after it are ignored and later calls
 * return the same promise. A send that failed (Redis unreachable) is sent again — the same charge, same
 * event_id — by the next `end()`/`abort()`.
 */
export class UsageMeter {
  private input = 0;
  private output = 0;
  private reports = 0;
  /** An authoritative total was given (`end({ final })`): what it says is billed, zeros included. */
  private final = false;
  private reported: string | undefined;
  private charge: ChargeInput | undefined;
  private sending: Promise<unknown> | undefined;

  constructor(
    private readonly producer: Pick<TallyProducer, 'charge'>,
    private readonly base: MeterBase,
    private readonly sendOptions: SendOptions = {},
  ) {
    // Refused now, while the caller can still react, rather than as a failed charge once the stream is over.
    if (typeof base.model !== 'string' || base.model.length === 0) {
      throw new PayloadError('invalid_payload', 'model: a UsageMeter needs the model it bills from creation');
    }
    const probe = chargeSchema.safeParse({ ...this.charged({ input_tokens: 0, output_tokens: 0 }), type: 'charge' });
    if (!probe.success) throw new PayloadError('invalid_payload', describeIssues(probe.error));
  }

  /** Adds one chunk's usage (ignored once the charge was decided). */
  add(chunk: UsageChunk | null | undefined): void {
    if (this.charge || !chunk) return;
    this.input = capped(this.input + whole(chunk.input_tokens));
    this.output = capped(this.output + whole(chunk.output_tokens));
    if (typeof chunk.model === 'string' && chunk.model) this.reported = chunk.model;
    this.reports++;
  }

  get counted(): { input_tokens: number; output_tokens: number; reports: number } {
    return { input_tokens: this.input, output_tokens: this.output, reports: this.reports };
  }

  /** The model the chunks last named, if any (for the caller's logs; the charge uses the meter's model). */
  get reportedModel(): string | undefined {
    return this.reported;
  }

  /** The stream finished. `final`: the provider's authoritative totals, replacing what the chunks summed. */
  end(opts: { final?: UsageChunk } = {}): Promise<unknown> {
    if (opts.final && !this.charge) {
      if (opts.final.input_tokens !== undefined) this.input = capped(whole(opts.final.input_tokens));
      if (opts.final.output_tokens !== undefined) this.output = capped(whole(opts.final.output_tokens));
      if (typeof opts.final.model === 'string' && opts.final.model) this.reported = opts.final.model;
      this.final = true;
      this.reports++;
    }
    return this.emit();
  }

  /** The stream was cut short: bills what was counted, or the hold's estimate when nothing was. */
  abort(): Promise<unknown> {
    return this.emit();
  }

  private emit(): Promise<unknown> {
    this.charge ??= this.decide();
    this.sending ??= this.producer.charge(this.charge, this.sendOptions).catch((err: unknown) => {
      this.sending = undefined; // nothing was settled: the next end()/abort() sends the same charge again
      throw err;
    });
    return this.sending;
  }

  private decide(): ChargeInput {
    const nothingCounted = !this.final && this.input === 0 && this.output === 0;
    if (nothingCounted && this.base.hold_id !== undefined) {
      // Without usage, a settling charge costs the hold's estimate.
      const { model: _model, ...charge } = this.base;
      return charge;
    }
    return this.charged({ input_tokens: this.input, output_tokens: this.output });
  }

  private charged(tokens: { input_tokens: number; output_tokens: number }): ChargeInput {
    const { model, ...charge } = this.base;
    return { ...charge, usage: { ...tokens, model } };
  }
}

/** A chunk's count as a whole, non-negative number (anything else — NaN, ∞, a string — counts as 0). */
function whole(n: unknown): number {
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

/** Clamped to what a charge may carry (USAGE_LIMITS), so a meter never emits a charge the workers refuse. */
function capped(n: number): number {
  return Math.min(n, USAGE_LIMITS.tokens);
}
