/**
 * The real tally the simulation drives: its own database and BullMQ prefix (createWorld), the api role in
 * this process, and the workers either here too or in two child processes (`tally start --role worker`).
 * No scheduler role: the simulation runs decay and the expire sweep itself, at the instants it chooses.
 */
import type { ChildProcess } from 'node:child_process';
import '../../src/modules.ts'; // feature modules register their workers, routes and maintenance tasks on import
import type { Job as BullJob } from 'bullmq';
import { createWorld, type TestWorld } from '../helpers/env.ts';
import { ADMIN_TOKEN, spawnTally, startTally, waitFor, type InProcessTally } from '../helpers/tally.ts';
import type { Job } from './model/model.ts';

/** A job's ending as tally reported it. */
export type Observation = { ok: true; result: Record<string, any> } | { ok: false; code: string; reason: string };

export interface SystemOptions {
  /** Worker processes: 1 = in this process, 2 = two child processes. */
  procs: 1 | 2;
  /** How long a job may take before the simulation calls it lost. */
  jobTimeoutMs?: number;
}

/** Extra environment for tally: a short wait for refunds that arrive before their charge (contract v2 §3). */
const SIM_ENV = { TALLY_REFUND_WAIT_SECONDS: '3' };

export class TallySystem {
  /** Times TallyProducer.result() answered something other than the finished job's own result. */
  sdkStaleResults = 0;
  readonly sdkStaleSamples: string[] = [];
  /** The latest business instant any run used: the next run starts after it (time only moves forward). */
  timeHigh = 0;
  private constructor(
    readonly world: TestWorld,
    readonly tally: InProcessTally,
    private readonly children: ChildProcess[],
    readonly opts: SystemOptions,
  ) {}

  static async start(opts: SystemOptions): Promise<TallySystem> {
    const world = await createWorld(SIM_ENV);
    const children: ChildProcess[] = [];
    try {
      const tally = await startTally(world, opts.procs === 1 ? ['api', 'worker'] : ['api'], SIM_ENV);
      const sys = new TallySystem(world, tally, children, opts);
      if (opts.procs === 2) {
        for (let i = 0; i < 2; i++) {
          const child = spawnTally(world, ['start', '--role', 'worker'], SIM_ENV);
          child.stdout?.on('data', () => {});
          child.stderr?.on('data', () => {});
          children.push(child);
        }
        // Both workers are up once each has registered on every queue.
        await waitFor('two worker processes', async () => (await tally.producer.queue('charges').getWorkers()).length >= 2 && (await tally.producer.queue('affinity-events').getWorkers()).length >= 2, 60_000, 200);
      }
      sys.timeHigh = Date.now();
      return sys;
    } catch (err) {
      for (const c of children) c.kill('SIGKILL');
      await world.drop();
      throw err;
    }
  }

  /** Sets tally's business clock to `at` (every process sees it at its next statement). */
  async pin(at: number): Promise<void> {
    await this.world.clock.set(new Date(at));
  }

  /**
   * Enqueues a wave of jobs as raw BullMQ jobs (jobId = event_id; the job's timestamp = the driven instant,
   * which tally takes as the enqueue time), queue by queue in one round trip each, then waits for every
   * result. `replace`: ids sent before — their old jobs are removed first so BullMQ takes the new add.
   */
  async wave(jobs: Job[], replace: Set<string>): Promise<Observation[]> {
    for (const id of replace) {
      for (const q of ['grants', 'charges', 'affinity-events']) await this.tally.producer.queue(q).remove(id);
    }
    const added = new Map<Job, BullJob>();
    for (const q of ['grants', 'charges', 'affinity-events'] as const) {
      const mine = jobs.filter((j) => j.queue === q);
      if (mine.length === 0) continue;
      const made = await this.tally.producer.queue(q).addBulk(
        mine.map((j) => ({ name: j.payload.type, data: j.payload, opts: { jobId: j.payload.event_id, timestamp: j.timestamp, removeOnComplete: false, removeOnFail: false } })),
      );
      mine.forEach((j, i) => added.set(j, made[i]!));
    }
    const timeout = this.opts.jobTimeoutMs ?? 90_000;
    return Promise.all(jobs.map((j) => this.outcome(j, added.get(j)!, timeout)));
  }

  /**
   * Waits for a job with the SDK's `result()`, then reads the finished job back from Redis: that read is what
   * counts. (`result()`'s backstop poll reads the job before its state, so a job finishing in between
   * resolves with `null` or an empty failure reason; such answers are counted in `sdkStaleResults`.)
   */
  private async outcome(j: Job, added: BullJob, timeout: number): Promise<Observation> {
    let sdk: unknown;
    try {
      sdk = await this.tally.producer.result(j.queue, added, timeout);
    } catch (err) {
      sdk = err;
      if (/timed out/.test((err as Error).message)) return { ok: false, code: 'timeout', reason: (err as Error).message };
    }
    const job = await this.tally.producer.queue(j.queue).getJob(j.payload.event_id);
    const state = await job?.getState();
    let seen: Observation;
    if (state === 'completed') seen = { ok: true, result: job!.returnvalue };
    else if (state === 'failed') seen = { ok: false, code: /^([a-z_]+):/.exec(job!.failedReason)?.[1] ?? 'error', reason: job!.failedReason };
    else return { ok: false, code: 'lost', reason: `lost: job ${j.payload.event_id} is ${state ?? 'gone'} after it finished` };
    const sdkSays = sdk instanceof Error ? sdk.message : JSON.stringify(sdk);
    const truth = seen.ok ? JSON.stringify(seen.result) : seen.reason;
    if (sdkSays !== truth) {
      this.sdkStaleResults++;
      if (this.sdkStaleSamples.length < 3) this.sdkStaleSamples.push(`${j.payload.event_id}: result() gave ${sdkSays.slice(0, 120)}, the job holds ${truth.slice(0, 120)}`);
    }
    return seen;
  }

  http(method: string, path: string, body?: unknown, admin = false) {
    return this.tally.http(method, path, body, admin ? ADMIN_TOKEN : undefined);
  }

  async stop(): Promise<void> {
    for (const c of this.children) c.kill('SIGTERM');
    await Promise.all(this.children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    await this.tally.stop();
    await this.world.drop();
  }
}
