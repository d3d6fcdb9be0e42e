import { z } from 'zod';
import { hasHashTag, isRedisUrl, parseClusterUrl } from '../redis.ts';

/**
 * Process environment, parsed once. Nothing else in tally reads `process.env`:
 * everything receives the frozen `Env` from the one place that wires dependencies.
 */
const optionalSecret = z
  .string()
  .min(16, 'must be at least 16 characters')
  .optional()
  .or(z.literal('').transform(() => undefined));

/**
 * `TALLY_TRUST_PROXY`: empty/`false`/`0` = trust nobody (the socket's address is the client); `true` = trust every
 * hop (only behind a proxy that overwrites X-Forwarded-For); a number = trust that many hops; otherwise a
 * comma-separated list of proxy addresses or CIDRs (e.g. `127.0.0.1,10.0.0.0/8`).
 */
function trustProxy(value: string): boolean | number | string[] {
  const v = value.trim().toLowerCase();
  if (v === '' || v === 'false' || v === '0') return false;
  if (v === 'true') return true;
  if (/^\d{1,2}$/.test(v)) return Number(v);
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

const envSchema = z.object({
  /** PostgreSQL; the database is created by `tally migrate` if missing and permitted. */
  DATABASE_URL: z.string().url().default('postgres://localhost:5432/tally'),
  /** Redis for BullMQ; must run with maxmemory-policy noeviction. */
  /** One Redis (`redis://…`, `rediss://…`) or the seed nodes of a cluster: `redis://host:port,host:port`. */
  REDIS_URL: z
    .string()
    .refine(isRedisUrl, 'expected redis://host:port (or rediss://), or cluster nodes redis://host:port,host:port')
    .default('redis://127.0.0.1:6379'),
  /** BullMQ key prefix; use `{tally}` on Redis Cluster so every key hashes to one slot. */
  TALLY_PREFIX: z.string().min(1).max(64).default('tally'),
  /** HTTP API, Bull Board and WebSocket port. */
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('0.0.0.0'),
  TALLY_API_TOKEN: optionalSecret,
  TALLY_ADMIN_TOKEN: optionalSecret,
  TALLY_WS_SECRET: optionalSecret,
  TALLY_PAYMENT_SECRET: optionalSecret,
  TALLY_METRICS_TOKEN: optionalSecret,
  /** Optional config document applied at start, like `tally config apply`. */
  TALLY_CONFIG: z.string().optional(),
  /** `1` = development: generated tokens are printed instead of refusing to start. */
  TALLY_DEV: z.enum(['0', '1', '']).default('0').transform((v) => v === '1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Jobs a worker process holds at once per queue; they are applied in group-committed batches, so more in flight
   *  means bigger batches (the bench's sweep: 256 → 1000 took uniform charges from ~1.3k to ~2.2k/s). */
  TALLY_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(5000).default(1000),
  /** Most events one ledger transaction applies. */
  TALLY_BATCH_MAX: z.coerce.number().int().min(1).max(5000).default(500),
  /** Ledger transactions one worker process runs at once. */
  TALLY_BATCH_PARALLEL: z.coerce.number().int().min(1).max(32).default(2),
  /** Most hold requests (POST /v1/holds, DELETE /v1/holds/:id) one transaction of an API process applies: requests
   *  arriving while one is in flight go together into the next (src/money/hold-batcher.ts). `1` = no group commit,
   *  one transaction per request. */
  TALLY_HOLD_BATCH_MAX: z.coerce.number().int().min(1).max(1000).default(200),
  /** Hold transactions one API process runs at once. */
  TALLY_HOLD_BATCH_PARALLEL: z.coerce.number().int().min(1).max(32).default(2),
  /** PostgreSQL connections per process. */
  TALLY_DB_POOL: z.coerce.number().int().min(1).max(200).default(10),
  /** PostgreSQL `statement_timeout` of every tally connection (ms, 0 = none): no statement of tally's runs near it
   *  (a 500-event ledger transaction's slowest takes tens of ms); past it the database is stuck or overloaded, and
   *  the statement fails as a transient fault. Reconcile of a very large ledger from the CLI may need more. */
  TALLY_DB_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(0).max(86_400_000).default(60_000),
  /** PostgreSQL `lock_timeout` (ms, 0 = none): tally's own transactions hold a row lock for milliseconds; a wait
   *  past this means something else holds it (an operator's open transaction). The waiter gives up and frees its
   *  pool connection for unrelated work; a worker retries its batch as a transient fault. */
  TALLY_DB_LOCK_TIMEOUT_MS: z.coerce.number().int().min(0).max(3_600_000).default(2_000),
  /** PostgreSQL `idle_in_transaction_session_timeout` (ms, 0 = none): a tally process that stops mid-transaction
   *  (a hung event loop) loses its session and releases its locks after this. */
  TALLY_DB_IDLE_TX_TIMEOUT_MS: z.coerce.number().int().min(0).max(86_400_000).default(60_000),
  /** How long a worker's claim on a job lasts without renewal; a crashed worker's jobs go back to waiting after it. */
  TALLY_LOCK_DURATION_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
  /** How long a refund waits for its charge to be applied (it may be in flight in another worker) before `unknown_charge`. */
  TALLY_REFUND_WAIT_SECONDS: z.coerce.number().int().min(0).max(86_400).default(600),
  /** How often a scheduler process re-asserts the maintenance schedules (restoring them after a Redis data loss). */
  TALLY_SCHEDULE_CHECK_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  /** Worker processes PM2 starts for the `worker` role. */
  TALLY_WORKERS: z.coerce.number().int().min(1).max(64).default(2),
  // --- observability, webhooks, logs (docs/observability.md, docs/alerts-webhooks.md) ---
  /** OTLP/HTTP collector base URL (e.g. http://otel-collector:4318); unset = tracing off and free. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional().or(z.literal('').transform(() => undefined)),
  /** `service.name` on exported spans. */
  OTEL_SERVICE_NAME: z.string().min(1).max(128).default('tally'),
  /** `json` (default for `tally start`) or `pretty` (default for `tally dev`): human-readable lines on stderr. */
  TALLY_LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  /** How long /metrics reuses its PostgreSQL and Redis reads: scrapes at any rate cost at most one read per period. */
  TALLY_METRICS_CACHE_MS: z.coerce.number().int().min(0).max(300_000).default(10_000),
  /** A webhook POST that has not answered by then counts as failed (and is retried). */
  TALLY_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  /** First retry delay of a failed delivery; doubles per attempt up to TALLY_WEBHOOK_BACKOFF_MAX_MS (jittered). */
  TALLY_WEBHOOK_BACKOFF_MS: z.coerce.number().int().min(10).max(3_600_000).default(30_000),
  TALLY_WEBHOOK_BACKOFF_MAX_MS: z.coerce.number().int().min(10).max(86_400_000).default(3_600_000),
  /** How long a delivery keeps being retried before it is dead (kept in the failed set, replayable). */
  TALLY_WEBHOOK_RETRY_SECONDS: z.coerce.number().int().min(1).max(30 * 86_400).default(86_400),
  /** Deliveries one worker process makes at once, over all endpoints. */
  TALLY_WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(32),
  /** Deliveries one worker process makes at once to any one endpoint: a slow receiver holds at most this many slots. */
  TALLY_WEBHOOK_PER_ENDPOINT: z.coerce.number().int().min(1).max(1000).default(4),
  // --- end observability ---
  // --- push (docs/push.md) ---
  /** WebSocket token lifetime ceiling: a token whose `exp` lies further ahead is refused (401), `tally token` refuses such a ttl. */
  TALLY_WS_MAX_TTL_SECONDS: z.coerce.number().int().min(1).max(10 * 365 * 86_400).default(604_800),
  /** Open WebSocket sockets per user, across every gateway process; a new one closes the user's oldest (code 4008). */
  TALLY_WS_MAX_PER_USER: z.coerce.number().int().min(1).max(10_000).default(20),
  /** Open WebSocket sockets per API process; upgrades beyond it are refused with 503. */
  TALLY_WS_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  // --- http (docs/http.md, docs/security.md) ---
  /** HTTP requests per minute per token (per client IP without a valid one), shared across API processes; 0 = off. */
  TALLY_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).max(10_000_000).default(6000),
  /** A request whose body has not fully arrived by then is answered 408 and its connection closed. */
  TALLY_HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
  /** How long an Idempotency-Key claim holds before another request may take it over (its owner died, or is that slow). */
  TALLY_IDEMPOTENCY_LEASE_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
  // --- retention (docs/operations.md "Retention"; pruned by the maintenance tasks outbox-prune, idempotency-keys, dead-letters) ---
  /** Published outbox rows are kept this long (WebSocket resume window), never past a registered feed consumer. */
  TALLY_OUTBOX_RETENTION_HOURS: z.coerce.number().int().min(1).max(8760).default(24),
  /** Idempotency-Key records are kept this long; the contract promises at least 24 h. */
  TALLY_IDEMPOTENCY_RETENTION_HOURS: z.coerce.number().int().min(24, 'Idempotency-Keys are kept at least 24 h (CONTRACT §4)').max(8760).default(24),
  /** Dead letters whose last failure is older than this are pruned; 0 = kept for ever. */
  TALLY_DEAD_LETTER_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(90),
  /** At most this many dead letters are kept (the oldest last failures go first); 0 = no cap. */
  TALLY_DEAD_LETTER_MAX_ROWS: z.coerce.number().int().min(0).max(1_000_000_000).default(1_000_000),
  /** Rows one pruning statement deletes: each chunk is its own short transaction. */
  TALLY_PRUNE_CHUNK: z.coerce.number().int().min(1).max(100_000).default(5000),
  /** Which proxies may set X-Forwarded-For (the client IP for rate limits and audit): off by default. */
  TALLY_TRUST_PROXY: z.string().default('').transform(trustProxy),
}).superRefine((env, ctx) => {
  // BullMQ's scripts touch several keys of a queue at once: on a cluster they must share one slot.
  if (parseClusterUrl(env.REDIS_URL) && !hasHashTag(env.TALLY_PREFIX)) {
    ctx.addIssue({ code: 'custom', path: ['TALLY_PREFIX'], message: `REDIS_URL names a Redis Cluster: TALLY_PREFIX needs a hash tag, e.g. {${env.TALLY_PREFIX}}` });
  }
});

export type Env = Readonly<z.infer<typeof envSchema>>;

export class EnvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvError';
  }
}

export function parseEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new EnvError(`invalid environment:\n${lines.join('\n')}`);
  }
  return Object.freeze(parsed.data);
}
