import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { HttpError, isTransient } from '../errors.ts';
import type { RouteTable } from './route-table.ts';

/**
 * Every error tally's HTTP layer answers has one shape, `{error:{code, message, details?}}` (CONTRACT §4):
 * tally's own HttpErrors, fastify's (body too large, bad JSON, unsupported type, validation), the router's
 * (404, 405, bad URL), the rate limit's 429 and Node's own (408 slow body, 431 huge headers, malformed HTTP).
 */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

/** Stable codes for the statuses the framework produces (a client switches on `code`, not on prose). */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  408: 'request_timeout',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  431: 'headers_too_large',
  503: 'unavailable',
};

const CODE_BY_FASTIFY_CODE: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_content_length',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_BAD_URL: 'invalid_url',
};

/** Path params are `params` to fastify and `path` to a client reading the message. */
const PART_NAME: Record<string, string> = { params: 'path', querystring: 'query', body: 'body', headers: 'headers' };

/** A request that did not fit its route's zod schemas: 400 naming each problem (as `http/validate.ts` does). */
function validationError(err: FastifyError): ErrorBody {
  const part = PART_NAME[err.validationContext ?? ''] ?? 'request';
  const issues = (err.validation ?? []).map((v) => ({ path: (v.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.'), message: v.message ?? 'invalid' }));
  const line = issues.map((i) => `${i.path || '(value)'}: ${i.message}`).join('; ');
  return errorBody('invalid_request', `invalid ${part}: ${line}`, issues);
}

export function toErrorReply(
  err: unknown,
  log: { error(obj: object, msg: string): void; warn(obj: object, msg: string): void },
): { status: number; body: ErrorBody; retryAfter?: number } {
  if (err instanceof HttpError) return { status: err.status, body: errorBody(err.code, err.message, err.details) };
  const fe = err as FastifyError;
  if (hasZodFastifySchemaValidationErrors(fe) || fe.code === 'FST_ERR_VALIDATION') return { status: 400, body: validationError(fe) };
  const status = fe.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = CODE_BY_FASTIFY_CODE[fe.code ?? ''] ?? CODE_BY_STATUS[status] ?? 'bad_request';
    return { status, body: errorBody(code, fe.message || STATUS_CODES[status] || 'bad request') };
  }
  // A passing fault that outlasted the route's own retries (a lock held past TALLY_DB_LOCK_TIMEOUT_MS, PostgreSQL
  // restarting, a dropped connection): nothing was applied, and the same request may well succeed shortly.
  if (isTransient(err)) {
    log.warn({ code: (err as { code?: unknown }).code }, 'request met a transient fault');
    return { status: 503, body: errorBody('unavailable', 'a passing fault in the database or Redis; nothing was applied; retry shortly'), retryAfter: 1 };
  }
  // Anything else is ours to fix: logged in full, answered without internals (a response that fails its own
  // schema lands here too, with the zod issues in the log).
  log.error({ err, issues: (fe as { cause?: { issues?: unknown } }).cause?.issues }, 'request failed');
  return { status: 500, body: errorBody('internal', 'internal error') };
}

export function errorHandler(err: unknown, req: FastifyRequest, reply: FastifyReply) {
  const { status, body, retryAfter } = toErrorReply(err, req.log);
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  return reply.status(status).send(body);
}

/** 404 for a path no route matches; 405 (with `Allow`) for a path some route matches under another method. */
export function notFoundHandler(routes: RouteTable) {
  return (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0]!;
    const allowed = routes.allowedMethods(path);
    // A route of this very method that answered "not found" (a static file under /docs that does not exist) is a
    // 404; 405 only when the path exists under other methods alone.
    if (allowed.length > 0 && !allowed.includes(req.method)) {
      return reply
        .status(405)
        .header('allow', allowed.join(', '))
        .send(errorBody('method_not_allowed', `${req.method} is not allowed on ${path} (allowed: ${allowed.join(', ')})`));
    }
    return reply.status(404).send(errorBody('not_found', `no route ${req.method} ${path}`));
  };
}

/** Errors the router raises before any route runs (an undecodable URL, an over-long path segment). */
export function frameworkErrors(err: FastifyError, _req: FastifyRequest, reply: FastifyReply) {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return reply.status(400).send(errorBody('invalid_request', 'a path segment is longer than 512 characters'));
  }
  return reply.status(400).send(errorBody(CODE_BY_FASTIFY_CODE[err.code] ?? 'bad_request', err.message));
}

/**
 * Node reports some failures on the raw socket, with no request object: the request timeout (a body that did not
 * arrive in time), oversized headers, malformed HTTP. The answer is written by hand in the same JSON shape, only
 * if nothing of a response went out yet, and the connection is closed either way.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const message =
    status === 408 ? 'the request did not arrive in time' : status === 431 ? 'request headers are too large' : 'malformed HTTP request';
  const pending = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || pending?.headersSent) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(CODE_BY_STATUS[status]!, message));
  // Destroyed once written (or after a second if the peer does not read): a slow client holds nothing.
  const done = () => socket.destroy();
  setTimeout(done, 1000).unref();
  socket.write(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    done,
  );
}
