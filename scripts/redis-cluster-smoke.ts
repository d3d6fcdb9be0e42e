// Checks that BullMQ under tally's key layout works on a Redis Cluster: `node --import tsx
// scripts/redis-cluster-smoke.ts 127.0.0.1:7101,127.0.0.1:7102 [prefix] [jobs]`. With a hash-tagged prefix such as
// `{tally}` every key of every queue lands in one slot, so BullMQ's multi-key Lua scripts work; without one
// they fail with CROSSSLOT. Used for docs/scaling.md; not part of the test suite (it needs a cluster).
import { Queue, Worker } from 'bullmq';
import { Cluster } from 'ioredis';

const nodes = (process.argv[2] ?? '127.0.0.1:7101').split(',').map((n) => {
  const [host, port] = n.split(':');
  return { host: host!, port: Number(port) };
});
const prefix = process.argv[3] ?? '{tally}';
const jobs = Number(process.argv[4] ?? 5000);

const connection = new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: null } });
const queue = new Queue('grants', { connection, prefix });
let done = 0;
const t0 = Date.now();
const finished = new Promise<void>((resolve) => {
  const worker = new Worker('grants', async (job) => ({ outcome: 'applied', n: job.data.n }), { connection, prefix, concurrency: 100 });
  worker.on('completed', () => {
    if (++done === jobs) void worker.close().then(() => resolve());
  });
  worker.on('error', (err) => {
    console.error(`worker error: ${err.message}`);
    process.exit(1);
  });
});
try {
  for (let i = 0; i < jobs; i += 500) {
    await queue.addBulk(Array.from({ length: Math.min(500, jobs - i) }, (_, k) => ({ name: 'grant', data: { n: i + k }, opts: { jobId: `smoke-${t0}-${i + k}`, removeOnComplete: true } })));
  }
  await finished;
  const s = (Date.now() - t0) / 1000;
  console.log(JSON.stringify({ prefix, jobs, seconds: s, jobs_per_second: Math.round(jobs / s), slot_of_prefix: await connection.cluster('KEYSLOT', `${prefix}:grants:id`) }));
} catch (err) {
  console.log(JSON.stringify({ prefix, error: (err as Error).message }));
} finally {
  await queue.close();
  connection.disconnect();
  process.exit(0);
}
