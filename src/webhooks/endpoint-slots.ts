/**
 * Per-endpoint concurrency inside one worker process: at most `perEndpoint` deliveries to one webhook at once.
 * The worker's other slots stay free for other endpoints, so a receiver that answers slowly (or only at the
 * timeout) holds up nobody but itself. A delivery that finds its endpoint full is not made to wait in a slot:
 * it goes back to the queue, delayed by about as long as that endpoint's recent attempts took
 * (`retryAfterMs`), so a backlog for a slow endpoint circulates slowly instead of spinning.
 */
export class EndpointSlots {
  private readonly busy = new Map<string, number>();
  /** Exponentially weighted mean of recent attempt durations per endpoint, ms. */
  private readonly latency = new Map<string, number>();

  constructor(private readonly perEndpoint: number) {}

  tryAcquire(endpoint: string): boolean {
    const n = this.busy.get(endpoint) ?? 0;
    if (n >= this.perEndpoint) return false;
    this.busy.set(endpoint, n + 1);
    return true;
  }

  release(endpoint: string, tookMs: number): void {
    const n = (this.busy.get(endpoint) ?? 1) - 1;
    if (n <= 0) this.busy.delete(endpoint);
    else this.busy.set(endpoint, n);
    const prev = this.latency.get(endpoint);
    this.latency.set(endpoint, prev === undefined ? tookMs : prev * 0.7 + tookMs * 0.3);
  }

  inFlight(endpoint: string): number {
    return this.busy.get(endpoint) ?? 0;
  }

  /** How long a delivery that found `endpoint` full should wait before trying again: 200 ms – 30 s, jittered. */
  retryAfterMs(endpoint: string): number {
    const typical = Math.min(30_000, Math.max(200, this.latency.get(endpoint) ?? 1000));
    return Math.round(typical * (0.5 + Math.random()));
  }
}
