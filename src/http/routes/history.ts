import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppContext } from '../../context.ts';
import { statement, type BalanceAt, type Statement } from '../../ledger/history.ts';
import type { StatementRow } from '../../ledger/sql/history.ts';
import { idSchema } from '../../queues/common.ts';
import { checkRange, clockFor, rangeFields } from '../history-time.ts';
import { errors } from '../schemas.ts';
import { csvLine } from '../csv.ts';

const params = z.object({ user_id: idSchema }).strict();
const query = z
  .object({
    asset: idSchema,
    ...rangeFields,
    format: z.enum(['ndjson', 'csv']).default('ndjson'),
  })
  .strict();

const CSV_COLUMNS = [
  'record', 'transaction_id', 'created_at', 'kind', 'amount', 'balance_before', 'balance_after',
  'event_id', 'source_type', 'source_id', 'occurred_at', 'description', 'exact_balance',
] as const;

function balanceFields(b: BalanceAt) {
  return { balance: Number(b.balance), recorded_balance: Number(b.recordedBalance), lapsed: Number(b.lapsed), transaction_id: b.entryId === null ? null : String(b.entryId) };
}

function entryJson(e: StatementRow) {
  return {
    type: 'entry',
    transaction_id: String(e.entry_id),
    created_at: e.created_at.toISOString(),
    kind: e.kind,
    amount: Number(e.amount),
    balance_before: Number(e.balance_before),
    balance_after: Number(e.balance_after),
    event_id: e.event_id,
    source_type: e.source_type,
    source_id: e.source_id,
    occurred_at: e.occurred_at?.toISOString() ?? null,
    description: e.description,
  };
}

/** NDJSON: an `opening` line, one `entry` line per entry, a `closing` line. */
async function* ndjson(head: object, st: Statement, to: string): AsyncGenerator<string> {
  yield `${JSON.stringify({ type: 'opening', ...head, ...balanceFields(st.opening) })}\n`;
  let n = 0;
  // One chunk per cursor batch: a thousand lines per write, not a thousand writes.
  for await (const batch of st.entries) {
    n += batch.length;
    yield batch.map((e) => `${JSON.stringify(entryJson(e))}\n`).join('');
  }
  yield `${JSON.stringify({ type: 'closing', at: to, entries: n, ...balanceFields(st.closing) })}\n`;
}

/**
 * CSV (RFC 4180, CRLF): a header, an `opening` row, one `entry` row per entry, a `closing` row. Opening and closing
 * rows carry the recorded balance in `balance_after` and the exact one in `exact_balance`.
 */
async function* csv(from: string | null, st: Statement, to: string): AsyncGenerator<string> {
  yield csvLine(CSV_COLUMNS);
  const edge = (record: string, at: string | null, b: BalanceAt, note: string) =>
    csvLine([record, b.entryId === null ? '' : String(b.entryId), at ?? '', '', '', '', Number(b.recordedBalance), '', '', '', '', note, Number(b.balance)]);
  yield edge('opening', from, st.opening, 'opening balance');
  let n = 0;
  for await (const batch of st.entries) {
    n += batch.length;
    yield batch
      .map(entryJson)
      .map((j) => csvLine(['entry', j.transaction_id, j.created_at, j.kind, j.amount, j.balance_before, j.balance_after, j.event_id, j.source_type, j.source_id, j.occurred_at, j.description, '']))
      .join('');
  }
  yield edge('closing', to, st.closing, `closing balance; ${n} entries`);
}

/** `GET /v1/users/:user_id/statement`: every entry of a range, streamed in constant memory (docs/http.md). */
export function historyRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get('/v1/users/:user_id/statement', {
    config: { auth: 'api' },
    schema: {
      tags: ['ledger'],
      summary: 'Every entry of an asset in [from, to), streamed (ndjson or csv), with opening and closing balances',
      params,
      querystring: query,
      produces: ['application/x-ndjson', 'text/csv'],
      response: {
        200: z.string().describe('NDJSON lines {type: opening|entry|closing, …}, or CSV with a header row (docs/http.md)'),
        ...errors(400),
      },
    },
  }, async (req, reply) => {
    const { asset, from, to, format } = req.query;
    checkRange(from, to);
    const clock = await clockFor(ctx.sql, to);
    const st = await statement(ctx.sql, req.params.user_id, asset, from ?? '-infinity', clock.until);
    const until = clock.untilIso;
    const head = { user_id: req.params.user_id, asset, from: from ?? null, to: until };
    const lines = format === 'csv' ? csv(from ?? null, st, until) : ndjson(head, st, until);
    // A Readable over the generator: the generator (and the database cursor behind it) is pulled only as fast as
    // the socket drains, and destroyed — closing the cursor — when the client goes away.
    const filename = `statement-${req.params.user_id}-${asset}.${format}`;
    return reply
      .header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
      .header('content-disposition', `attachment; filename="${filename}"`)
      .send(Readable.from(lines, { objectMode: false, highWaterMark: 64 * 1024 }) as never);
  });
}
