import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ConfigInvalidError } from '../../config/document.ts';
import { applyConfig } from '../../config/store.ts';
import type { AppContext } from '../../context.ts';
import { HttpError } from '../../errors.ts';
import { MAINTENANCE_TASKS } from '../../maintenance/tasks.ts';
import { authorize } from '../auth.ts';
import { parse } from '../validate.ts';

export function adminRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.addHook('preHandler', authorize({ api: ctx.env.TALLY_API_TOKEN, admin: ctx.env.TALLY_ADMIN_TOKEN }, 'admin'));

  // YAML bodies are accepted too, like `tally config apply FILE`.
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml'], { parseAs: 'string' }, async (_req: unknown, body: string) => {
    const { parse: parseYaml } = await import('yaml');
    try {
      return parseYaml(body);
    } catch (err) {
      throw new HttpError(400, 'invalid_yaml', (err as Error).message);
    }
  });

  app.put('/v1/admin/config', async (req) => {
    try {
      const summary = await applyConfig(ctx.sql, req.body);
      ctx.log.info({ version: summary.version, changed: summary.changed }, 'config applied');
      return summary;
    } catch (err) {
      if (err instanceof ConfigInvalidError) throw new HttpError(422, 'invalid_config', err.message, err.issues);
      throw err;
    }
  });

  app.post('/v1/admin/maintenance/:task', async (req) => {
    const { task } = parse(z.object({ task: z.string().max(64) }), req.params, 'path');
    const run = MAINTENANCE_TASKS.get(task);
    if (!run) throw new HttpError(404, 'unknown_task', `unknown maintenance task "${task}" (known: ${[...MAINTENANCE_TASKS.keys()].join(', ')})`);
    return run({ sql: ctx.sql, configs: ctx.configs });
  });
}
