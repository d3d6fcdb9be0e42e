import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { RefusedAddressError, refusedAddressReason } from './address-policy.ts';

/** How one POST attempt ended. Only `delivered` ends a delivery; everything else is retried. */
export type PostResult =
  | { result: 'delivered'; status: number; ms: number }
  | { result: 'http_status' | 'redirect'; status: number; ms: number }
  | { result: 'timeout' | 'network' | 'refused'; message: string; ms: number };

/** Resolves a host name to every address it has (dns.lookup's `all: true` shape); injectable for tests. */
export type Resolver = (host: string) => Promise<LookupAddress[]>;

const systemResolver: Resolver = (host) =>
  new Promise((resolve, reject) => dnsLookup(host, { all: true, verbatim: true }, (err, addrs) => (err ? reject(err) : resolve(addrs))));

export interface PostOptions {
  timeoutMs: number;
  /** The webhook's `allow_private_network`: skip the address policy. */
  allowPrivate: boolean;
  resolver?: Resolver;
}

/**
 * A `lookup` for http.request that refuses the connection when any address the name resolves to is refused:
 * the check and the connect use the same answer, so a DNS rebinding between them is not possible.
 */
function guardedLookup(resolver: Resolver, allowPrivate: boolean): LookupFunction {
  return (host, options, callback) => {
    resolver(host).then(
      (addrs) => {
        const wanted = options.family === 4 || options.family === 6 ? addrs.filter((a) => a.family === options.family) : addrs;
        if (wanted.length === 0) return callback(Object.assign(new Error(`${host} has no usable address`), { code: 'ENOTFOUND' }), '', 4);
        if (!allowPrivate) {
          for (const a of wanted) {
            const reason = refusedAddressReason(a.address);
            if (reason) return callback(new RefusedAddressError(host, a.address, reason), '', 4);
          }
        }
        if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, wanted);
        callback(null, wanted[0]!.address, wanted[0]!.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 4),
    );
  };
}

/**
 * POSTs `body` to `url` once. Never follows redirects (a 3xx is a failed attempt: following one would let a
 * public host bounce us to a private one). Host names are resolved and checked by `guardedLookup`; IP literals
 * (the URL parser has already turned `http://2130706433/` or `http://0177.1/` into dotted decimal) are checked
 * here, since Node does not look them up. The whole attempt — connect, send, status line — has one deadline.
 */
export function postOnce(url: URL, body: string, headers: Record<string, string>, opts: PostOptions): Promise<PostResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(literal) && !opts.allowPrivate) {
    const reason = refusedAddressReason(literal);
    if (reason) return Promise.resolve({ result: 'refused', message: new RefusedAddressError(url.hostname, literal, reason).message, ms: 0 });
  }
  const reqOpts: RequestOptions = {
    method: 'POST',
    headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
    agent: false, // one connection per attempt: no pooled socket outlives the policy check that opened it
    lookup: guardedLookup(opts.resolver ?? systemResolver, opts.allowPrivate),
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<PostResult>((resolve) => {
    let settled = false;
    const finish = (r: PostResult) => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    const req = send(url, reqOpts, (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      // The answer is the status; the body is read and dropped (bounded by the deadline) so the socket closes cleanly.
      res.resume();
      res.on('error', () => {});
      res.on('end', () => {
        clearTimeout(deadline);
        req.destroy();
      });
      if (status >= 200 && status < 300) finish({ result: 'delivered', status, ms: ms() });
      else if (status >= 300 && status < 400) finish({ result: 'redirect', status, ms: ms() });
      else finish({ result: 'http_status', status, ms: ms() });
    });
    // Also bounds a receiver that answers but never finishes its body: the socket is cut at the deadline.
    const deadline = setTimeout(() => {
      finish({ result: 'timeout', message: `no answer within ${opts.timeoutMs} ms`, ms: ms() });
      req.destroy();
    }, opts.timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(deadline);
      if (err instanceof RefusedAddressError) finish({ result: 'refused', message: err.message, ms: ms() });
      else finish({ result: 'network', message: `${err.code ?? err.name}: ${err.message}`.slice(0, 300), ms: ms() });
    });
    req.end(body);
  });
}
