import { connectClient, type ConnectOptions, type PushClient, type PushMessageSeen } from './ws-client.ts';

const seqOf = (id: string) => BigInt(id.slice(3));

/**
 * A client as the contract asks one to be written: it keeps the last `id` it saw and, whenever its socket
 * closes (4001, 4003, a network blip), reconnects with `?since=` that id — retrying while the server refuses.
 * It records every event (deduped by id), every close code, and any order violation within one socket.
 */
export class ResumingClient {
  readonly sessions: PushClient[] = [];
  /** Events by id (deduped). */
  readonly events = new Map<string, PushMessageSeen>();
  readonly closeCodes: number[] = [];
  readonly violations: string[] = [];
  resyncs = 0;
  refusals = 0;
  lastId: string | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private current: PushClient | undefined;

  constructor(
    private readonly base: () => string,
    readonly userId: string,
    private readonly opts: { since?: string; connect?: () => ConnectOptions; onMessage?: (m: PushMessageSeen, at: number) => void } = {},
  ) {
    this.lastId = opts.since;
  }

  /** Connects (first socket open when this resolves) and keeps reconnecting until `stop()`. */
  async start(): Promise<void> {
    await this.connectOnce();
    this.loop = this.reconnectLoop();
  }

  /** Event payload keys (data.key) seen, deduped by id. */
  keys(): string[] {
    return [...this.events.values()].filter((m) => m.type !== 'resync').map((m) => m.data.key as string);
  }

  /** Ends the current socket abruptly (as a network drop would). */
  drop(): void {
    this.current?.ws.terminate();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.ws.terminate();
    await this.loop;
  }

  private async connectOnce(): Promise<void> {
    for (;;) {
      try {
        const c = await connectClient(this.base(), this.userId, { ...(this.opts.connect?.() ?? {}), since: this.lastId });
        this.attach(c);
        return;
      } catch {
        this.refusals++;
        if (this.stopped) return;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
  }

  private attach(c: PushClient): void {
    this.sessions.push(c);
    this.current = c;
    let last = -1n;
    const handle = (m: PushMessageSeen, at: number) => {
      if (m.type === 'resync') {
        this.resyncs++;
        if (last !== -1n) this.violations.push(`resync after events on one socket (${m.id})`);
      } else {
        const seq = seqOf(m.id);
        if (seq <= last) this.violations.push(`out of order or repeated on one socket: ${m.id} after ob-${last}`);
        last = seq;
        if (m.data?.user !== undefined && m.data.user !== this.userId) this.violations.push(`another user's event: ${m.id}`);
        const prior = this.events.get(m.id);
        if (prior && prior.data?.key !== m.data?.key) this.violations.push(`id ${m.id} reused for another event`);
        this.events.set(m.id, m);
        this.opts.onMessage?.(m, at);
      }
      this.lastId = m.id;
    };
    // connectClient's own listener (registered first) has already parsed and stored each message.
    let done = 0;
    const drain = () => {
      for (; done < c.messages.length; done++) handle(c.messages[done]!, c.receivedAt[done]!);
    };
    drain();
    c.ws.on('message', drain);
  }

  private async reconnectLoop(): Promise<void> {
    while (!this.stopped) {
      const c = this.current!;
      await new Promise<void>((resolve) => (c.closed ? resolve() : c.ws.once('close', () => resolve())));
      this.closeCodes.push(c.closeCode ?? 1006);
      if (this.stopped) return;
      await this.connectOnce();
    }
  }
}
