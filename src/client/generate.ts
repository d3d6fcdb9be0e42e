// Development-time only (openapi-typescript is a devDependency): used by `npm run client:types` and by the test
// that fails when the committed types lag behind the live document. Nothing at runtime imports this file.
import openapiTS, { astToString } from 'openapi-typescript';

export const TYPES_FILE = new URL('./openapi.ts', import.meta.url);

const HEADER = `// Generated from tally's OpenAPI document by \`npm run client:types\` (openapi-typescript). Do not edit:
// change the route's zod schemas and run it again. test/http-openapi.test.ts fails while this file is stale.
/* eslint-disable */
`;

/** The TypeScript types openapi-typescript derives from `doc` (deterministic: same document, same text). */
export async function renderClientTypes(doc: object): Promise<string> {
  const ast = await openapiTS(doc as never, { alphabetize: true, silent: true });
  return HEADER + astToString(ast);
}
