import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../errors.ts';

/** Most JSON a request may carry (CONTRACT §4's 413 past it). */
export const JSON_BODY_LIMIT = 1024 * 1024;

/**
 * Deepest JSON nesting accepted. Nothing tally takes comes close (a queue payload's metadata is at most 32 levels,
 * inside `{events:[…]}`), and refusing it here means no validator, canonicaliser or logger below ever recurses
 * 50,000 levels into a hostile body.
 */
export const MAX_JSON_DEPTH = 64;

/** Whether `text` nests arrays/objects deeper than `max`: one linear pass, brackets inside strings skipped. */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: the next char is escaped
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > max) return true;
    } else if (c === 93 || c === 125) depth--;
  }
  return false;
}

/** Methods whose requests carry no body in tally's API: an empty one labelled JSON is simply no body. */
const BODILESS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS']);

const rawBodies = new WeakMap<FastifyRequest, string>();

/** The exact request text, for routes that declared `config: { rawBody: true }`. */
export function rawBodyOf(req: FastifyRequest): string {
  return rawBodies.get(req) ?? '';
}

/** Why a signed route's body did not parse: reported after the signature check, so a forgery still gets 401. */
const deferredErrors = new WeakMap<FastifyRequest, Error>();
export function bodyErrorOf(req: FastifyRequest): Error | undefined {
  return deferredErrors.get(req);
}

/**
 * tally's one JSON parser: fastify's own (secure-json-parse: `__proto__` and `constructor.prototype` keys are
 * refused) behind a depth bound. Routes that declare `rawBody` keep the text, and their parse errors wait for
 * the route's own check (see `bodyErrorOf`).
 */
export function installJsonParser(app: FastifyInstance): void {
  const secureParse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: JSON_BODY_LIMIT }, (req, body, done) => {
    const text = body as string;
    const keep = req.routeOptions.config?.rawBody === true;
    if (keep) rawBodies.set(req, text);
    const fail = (err: Error) => {
      if (!keep) return done(err, undefined);
      deferredErrors.set(req, err);
      done(null, undefined);
    };
    // Many HTTP clients label every request JSON, a bodiless DELETE included: nothing sent is no body, not bad JSON.
    if (text === '' && BODILESS.has(req.method)) return done(null, undefined);
    if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
      return fail(new HttpError(400, 'invalid_json', `JSON nested deeper than ${MAX_JSON_DEPTH} levels`));
    }
    secureParse(req, text, (err, value) => (err ? fail(err) : done(null, value)));
  });
}
