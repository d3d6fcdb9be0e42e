// PM2 deployment of tally: `npx pm2 start ecosystem.config.cjs` (README, "Running with PM2").
//
// Three apps, one per role, all running `node bin/tally.mjs start --role X` with the environment of the shell
// that starts them (DATABASE_URL, REDIS_URL, TALLY_* — CONTRACT §1). This file is PM2's, not tally's: it is
// the one other place that reads process.env, and only for the process counts below.
//
// Shutdown: PM2 sends SIGINT; tally stops taking jobs, lets in-flight ones finish (bounded: 10 s grace, then
// they go back to the queue) and exits by itself within 30 s. kill_timeout is above that, so PM2 never has to
// SIGKILL a worker mid-job on a normal deploy (which would leave jobs active until the stall check).

const workers = Number(process.env.TALLY_WORKERS || 2);

const common = {
  script: 'bin/tally.mjs',
  cwd: __dirname,
  interpreter: 'node',
  kill_timeout: 35_000,
  // A crash loop backs off (100 ms, doubling, capped at 15 s) instead of hammering PostgreSQL and Redis.
  exp_backoff_restart_delay: 100,
  min_uptime: '10s',
  max_restarts: 50,
  time: true,
  merge_logs: true,
  env: { NODE_ENV: 'production' },
};

module.exports = {
  apps: [
    {
      ...common,
      name: 'tally-api',
      args: 'start --role api',
      // Fork mode, one process: PM2's cluster mode swaps stdout/stderr for IPC, and tally's logger writes to fd 2
      // directly (asynchronously, for speed), so cluster-mode logs would be lost. More API capacity: more hosts.
      exec_mode: 'fork',
      instances: 1,
      max_memory_restart: '512M',
      listen_timeout: 15_000,
    },
    {
      ...common,
      name: 'tally-worker',
      args: 'start --role worker',
      exec_mode: 'fork', // N independent processes (see tally-api for why not cluster mode)
      instances: workers,
      // Each holds up to TALLY_WORKER_CONCURRENCY jobs per queue and a TALLY_DB_POOL of connections:
      // instances × TALLY_DB_POOL must stay under PostgreSQL's max_connections.
      max_memory_restart: '1G',
      // A larger young generation: a busy worker allocates ~40 KB per job (BullMQ, ioredis, postgres.js), and
      // with V8's default 16 MB semi-spaces scavenging took ~20 % of its CPU. Measured: +5–8 % ledger throughput.
      node_args: ['--max-semi-space-size=64'],
    },
    {
      ...common,
      name: 'tally-scheduler',
      args: 'start --role scheduler',
      exec_mode: 'fork',
      instances: 1, // schedules are keyed in Redis, so a second one would be harmless, but it is not needed
      max_memory_restart: '256M',
    },
  ],
};
