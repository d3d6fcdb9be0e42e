import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ConfigInvalidError, configDocumentSchema } from '../../config/document.ts';
import { applyConfig } from '../../config/store.ts';
import type { AppContext } from '../../context.ts';
import { HttpError } from '../../errors.ts';
import { MAINTENANCE_TASKS } from '../../maintenance/tasks.ts';
import { auditWrites } from '../audit.ts';
import { errors, named } from '../schemas.ts';
import { parseBoundedYaml, YAML_LIMITS } from '../yaml.ts';

// Named for the document only: applyConfig validates (422 with every problem), so the route's own check is
// just "an object" and the config schema stays free to change shape internally.
named(configDocumentSchema, 'ConfigDocument', 'A tally config document (CONTRACT §6), as YAML or JSON.', { input: true });

const configBody = z.record(z.string(), z.unknown()).describe('a config document: see components.schemas.ConfigDocument');
const applySummary = z.object({ version: z.number().int(), changed: z.boolean().describe('false: this document was in force already') });
const taskParams = z.object({ task: z.string().max(64) });
const taskSummary = z.looseObject({ task: z.string() }).describe('the task\'s JSON summary (reconcile: ok and violations)');

export function adminRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  auditWrites(app, ctx);

  // YAML bodies are accepted too, like `tally config apply FILE`; only ever parsed once the admin token passed.
  app.addContentTypeParser(
    ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'],
    { parseAs: 'string', bodyLimit: YAML_LIMITS.bytes },
    async (_req: unknown, body: string) => parseBoundedYaml(body),
  );

  r.put('/v1/admin/config', {
    config: { auth: 'admin' },
    schema: {
      tags: ['admin'],
      summary: 'Apply a config document (as `tally config apply`); refused as a whole if invalid',
      consumes: ['application/json', 'application/yaml'],
      body: configBody,
      response: { 200: applySummary, ...errors(400, 413, 415, 422) },
    },
  }, async (req) => {
    try {
      const summary = await applyConfig(ctx.sql, req.body);
      ctx.log.info({ version: summary.version, changed: summary.changed }, 'config applied');
      return summary;
    } catch (err) {
      if (err instanceof ConfigInvalidError) throw new HttpError(422, 'invalid_config', err.message, err.issues);
      throw err;
    }
  });

  r.post('/v1/admin/maintenance/:task', {
    config: { auth: 'admin' },
    schema: { tags: ['admin'], summary: 'Run one maintenance task now (expire, decay, reconcile, …)', params: taskParams, response: { 200: taskSummary, ...errors(400, 404) } },
  }, async (req) => {
    const run = MAINTENANCE_TASKS.get(req.params.task);
    if (!run) throw new HttpError(404, 'unknown_task', `unknown maintenance task "${req.params.task}" (known: ${[...MAINTENANCE_TASKS.keys()].join(', ')})`);
    return run({ sql: ctx.sql, configs: ctx.configs, env: ctx.env });
  });
}
