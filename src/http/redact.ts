/**
 * What `GET /v1/admin/config` hides. An admin can read the config, but the answer lands in terminals, tickets and
 * logs: values under keys that name a secret are replaced, and so are URL query strings and credentials (a
 * webhook URL may carry a token in its query). The document keeps its shape, so it can be edited and applied again
 * once the secrets are filled back in.
 */
const SECRET_KEY = /secret|token|password|passwd|api[_-]?key|private[_-]?key|authorization|credential/i;
export const REDACTED = '[redacted]';

export function redactSecrets(doc: unknown): { value: unknown; paths: string[] } {
  const paths: string[] = [];
  const walk = (v: unknown, path: string[], key: string): unknown => {
    if (SECRET_KEY.test(key) && v !== null && typeof v !== 'object') {
      paths.push(path.join('.'));
      return REDACTED;
    }
    if (typeof v === 'string' && /^https?:\/\//i.test(v)) return redactUrl(v, path, paths);
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, String(i)], ''));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, [...path, k], k)]));
    return v;
  };
  return { value: walk(doc, [], ''), paths };
}

function redactUrl(text: string, path: string[], paths: string[]): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text;
  }
  if (!url.username && !url.password && !url.search) return text;
  paths.push(path.join('.'));
  if (url.username) url.username = 'redacted';
  if (url.password) url.password = 'redacted';
  for (const k of [...url.searchParams.keys()]) url.searchParams.set(k, 'redacted');
  return url.toString();
}
