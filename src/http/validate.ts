import type { z } from 'zod';
import { HttpError } from '../errors.ts';
import { describeIssues } from '../queues/common.ts';

/** Parses request input with zod; anything that does not fit is a 400 naming each problem. */
export function parse<S extends z.ZodType>(schema: S, input: unknown, what = 'request'): z.infer<S> {
  const r = schema.safeParse(input);
  if (!r.success) {
    throw new HttpError(400, 'invalid_request', `invalid ${what}: ${describeIssues(r.error)}`, r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  }
  return r.data;
}
