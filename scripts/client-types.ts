// Regenerates src/client/openapi.ts from the document the server builds (no listening, no database queries;
// Redis must be reachable, as for `npm test`). Run after changing any route's schemas: npm run client:types
import '../src/modules.ts';
import { writeFile } from 'node:fs/promises';
import { renderClientTypes, TYPES_FILE } from '../src/client/generate.ts';
import { parseEnv } from '../src/config/env.ts';
import { createContext } from '../src/context.ts';
import { buildServer } from '../src/http/server.ts';

const ctx = createContext(parseEnv({ TALLY_API_TOKEN: 'generate-types-token', TALLY_ADMIN_TOKEN: 'generate-types-admin', LOG_LEVEL: 'silent' }));
const app = await buildServer(ctx);
try {
  await app.ready();
  await writeFile(TYPES_FILE, await renderClientTypes(app.swagger()));
  console.log(`wrote ${TYPES_FILE.pathname}`);
} finally {
  await app.close();
  await ctx.close();
}
