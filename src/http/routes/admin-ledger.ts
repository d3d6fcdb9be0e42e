import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { canonicalJson, sha256 } from '../../config/store.ts';
import type { AppContext } from '../../context.ts';
import { HttpError } from '../../errors.ts';
import type { AdjustCommand } from '../../ledger/commands.ts';
import { runLedgerTransaction } from '../../ledger/transaction.ts';
import { idSchema, textSchema } from '../../queues/common.ts';
import { auditWrites } from '../audit.ts';
import { retryTransient } from '../transient.ts';
import { errors, named } from '../schemas.ts';

/** The namespace adjusts are decided under in processed_events: exactly once per event_id, like a queue's events. */
export const ADJUST_NAMESPACE = 'ledger-adjust';

const adjustBody = named(
  z
    .object({
      event_id: idSchema,
      user_id: idSchema,
      asset: idSchema,
      amount: z
        .number()
        .int('amount must be an integer')
        .min(-Number.MAX_SAFE_INTEGER)
        .max(Number.MAX_SAFE_INTEGER)
        .refine((n) => n !== 0, 'amount must not be 0')
        .describe('signed: positive adds a batch with the asset\'s default expiry, negative burns like a post-paid charge'),
      reason: textSchema.min(1, 'reason is required'),
      operator_id: idSchema,
    })
    .strict(),
  'LedgerAdjustRequest',
  undefined,
  { input: true },
);

const num = z.number().int();
const adjustResult = named(
  z.object({
    event_id: z.string(),
    outcome: z.enum(['applied', 'noop_duplicate']),
    original_outcome: z.string().optional().describe('on noop_duplicate: the first answer\'s outcome'),
    transaction_id: z.string(),
    amount: num.describe('signed, as requested'),
    balance_before: num,
    balance_after: num,
  }),
  'LedgerAdjustResult',
);

function toCommand(body: z.infer<typeof adjustBody>): AdjustCommand {
  return {
    queue: ADJUST_NAMESPACE,
    eventId: body.event_id,
    jobId: body.event_id,
    payloadHash: sha256(canonicalJson(body)),
    payload: body,
    op: 'adjust',
    userId: body.user_id,
    asset: body.asset,
    amount: BigInt(body.amount),
    reason: body.reason,
    operatorId: body.operator_id,
  };
}

/** `POST /v1/admin/ledger/adjust`: one ledger transaction in this process, answered with its result. */
export function adminLedgerRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  auditWrites(app, ctx);

  r.post('/v1/admin/ledger/adjust', {
    config: { auth: 'admin' },
    schema: {
      tags: ['ledger', 'admin'],
      summary: 'Correct a balance by a signed amount: an `adjust` entry with operator and reason (exactly once by event_id)',
      body: adjustBody,
      response: { 200: adjustResult, ...errors(400, 409, 422) },
    },
  }, async (req) => {
    const cmd = toCommand(req.body);
    const [outcome] = await retryTransient(() => runLedgerTransaction(ctx.sql, ctx.configs, [cmd]));
    if (!outcome!.ok) {
      const { code, message } = outcome!.error as { code: string; message: string };
      throw new HttpError(code === 'idempotency_conflict' ? 409 : 422, code, message);
    }
    return { event_id: req.body.event_id, ...(outcome!.result as Omit<z.infer<typeof adjustResult>, 'event_id'>) };
  });
}
