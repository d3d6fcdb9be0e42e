// The webhooks module: the outbox fan-out and the `webhooks` worker (worker role), and `tally webhooks dead|replay`.
import { parseArgs } from 'node:util';
import { printJson, registerCommand, UsageError } from '../cli/registry.ts';
import { createContext } from '../context.ts';
import { createLogger } from '../log.ts';
import { onRoleStart } from '../roles.ts';
import { listDeadDeliveries, replayDeadDeliveries } from './dead.ts';
import { WEBHOOKS_QUEUE } from './delivery.ts';
import { startFanout } from './fanout-runner.ts';
import { startWebhookWorker } from './worker.ts';

onRoleStart('worker', async (ctx) => {
  const worker = startWebhookWorker(ctx);
  return { close: () => worker.close() };
});
// The outbox → deliveries fan-out: every worker process runs one; one at a time does the work (fanout.ts).
onRoleStart('worker', (ctx) => startFanout(ctx));

const USAGE = 'tally webhooks dead [--webhook ID] [--limit N] | tally webhooks replay (DELIVERY_ID… | --webhook ID | --all)';

/**
 * Dead deliveries for an operator: `dead` lists them (no payloads), `replay` sends them again with a fresh
 * retry window. Bull Board shows and retries them too; this is the scriptable way.
 */
registerCommand('webhooks', async (args, env) => {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { webhook: { type: 'string' }, limit: { type: 'string' }, all: { type: 'boolean' } },
  });
  if (sub !== 'dead' && sub !== 'replay') throw new UsageError(USAGE);
  const ctx = createContext(env, createLogger(env.LOG_LEVEL));
  try {
    const queue = ctx.producer.queue(WEBHOOKS_QUEUE);
    if (sub === 'dead') {
      const limit = values.limit === undefined ? 100 : Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new UsageError('--limit must be an integer 1–100000');
      printJson({ task: 'webhooks dead', ...(await listDeadDeliveries(queue, { webhookId: values.webhook, limit })) });
      return 0;
    }
    if (positionals.length === 0 && !values.webhook && !values.all) throw new UsageError(USAGE);
    const summary = await replayDeadDeliveries(queue, positionals.length > 0 ? { ids: positionals } : { webhookId: values.webhook, all: values.all });
    printJson({ task: 'webhooks replay', replayed: summary.replayed.length, not_dead: summary.not_dead, delivery_ids: summary.replayed });
    return summary.not_dead.length > 0 ? 1 : 0;
  } finally {
    await ctx.close();
  }
});
