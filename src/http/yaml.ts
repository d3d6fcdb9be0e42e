import { isAlias, isMap, isPair, isScalar, isSeq, Lexer, parseDocument, type Document } from 'yaml';
import { HttpError } from '../errors.ts';

/**
 * Bounds for a YAML request body (`PUT /v1/admin/config`). A config document is a few KB; these stop an admin
 * mistake or a stolen token from freezing the process: yaml's composer recurses per flow level (it overflows near
 * 800), and its duplicate-key check is quadratic (20k keys took 5 s), so both are bounded before it runs.
 */
export const YAML_LIMITS = {
  /** Bytes of YAML accepted (also the parser's body limit: 413 past it). */
  bytes: 256 * 1024,
  /** Nesting of collections, flow or block. */
  depth: 32,
  /** Mapping keys in the whole document. */
  keys: 10_000,
  /** Alias nodes, and alias expansions when converting (billion laughs). */
  aliases: 100,
};

const FLOW_OPEN = new Set(['[', '{']);
const FLOW_CLOSE = new Set([']', '}']);

const tooMany = () => new HttpError(400, 'invalid_yaml', `more than ${YAML_LIMITS.keys} YAML keys`);

/**
 * One pass over the lexer's tokens (linear, no recursion) before the parser runs: flow nesting, and the number of
 * `:` value indicators (at least one per key), so an oversized document is refused without being parsed.
 */
function prescan(text: string): void {
  let depth = 0;
  let colons = 0;
  for (const token of new Lexer().lex(text)) {
    if (token === ':' && ++colons > YAML_LIMITS.keys) throw tooMany();
    if (FLOW_OPEN.has(token)) {
      if (++depth > YAML_LIMITS.depth) throw new HttpError(400, 'invalid_yaml', `YAML nested deeper than ${YAML_LIMITS.depth} levels`);
    } else if (FLOW_CLOSE.has(token)) depth--;
  }
}

/** Walks the parsed nodes with an explicit stack: depth, key count, duplicate keys, aliases. */
function checkNodes(doc: Document.Parsed): void {
  let keys = 0;
  let aliases = 0;
  const stack: { node: unknown; depth: number }[] = [{ node: doc.contents, depth: 0 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (isAlias(node) && ++aliases > YAML_LIMITS.aliases) throw new HttpError(400, 'invalid_yaml', `more than ${YAML_LIMITS.aliases} YAML aliases`);
    if (!isMap(node) && !isSeq(node)) continue;
    if (depth >= YAML_LIMITS.depth) throw new HttpError(400, 'invalid_yaml', `YAML nested deeper than ${YAML_LIMITS.depth} levels`);
    const seen = new Set<unknown>();
    for (const item of node.items) {
      if (!isPair(item)) {
        stack.push({ node: item, depth: depth + 1 });
        continue;
      }
      if (++keys > YAML_LIMITS.keys) throw tooMany();
      if (!isScalar(item.key)) throw new HttpError(400, 'invalid_yaml', 'YAML keys must be plain values');
      if (seen.has(item.key.value)) throw new HttpError(400, 'invalid_yaml', `duplicate YAML key "${String(item.key.value).slice(0, 64)}"`);
      seen.add(item.key.value);
      stack.push({ node: item.value, depth: depth + 1 });
    }
  }
}

/**
 * A YAML alias may name a collection it sits in (`a: &a [*a]`): toJS then builds a value that contains itself,
 * which nothing downstream can walk or serialise (the admin audit answered 503 "retry" for it). Refused here, with an
 * explicit stack (the value is bounded by the alias limit, so the walk is too).
 */
function acyclic(value: unknown): unknown {
  const onPath = new Set<object>();
  const stack: { v: unknown; leave?: true }[] = [{ v: value }];
  while (stack.length > 0) {
    const { v, leave } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (leave) {
      onPath.delete(v);
      continue;
    }
    if (onPath.has(v)) throw new HttpError(400, 'invalid_yaml', 'a YAML alias names a collection that contains it (the document would contain itself)');
    onPath.add(v);
    stack.push({ v, leave: true });
    for (const child of Object.values(v)) stack.push({ v: child });
  }
  return value;
}

/** Parses one YAML document within `YAML_LIMITS`; anything outside them, or not YAML, is a 400 `invalid_yaml`. */
export function parseBoundedYaml(text: string): unknown {
  prescan(text);
  // uniqueKeys off: its check is quadratic; checkNodes finds duplicates in linear time instead.
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
  const first = doc.errors[0];
  if (first) throw new HttpError(400, 'invalid_yaml', first.message.split('\n')[0]!.slice(0, 300));
  checkNodes(doc);
  try {
    return acyclic(doc.toJS({ maxAliasCount: YAML_LIMITS.aliases }));
  } catch (err) {
    if (err instanceof HttpError) throw err;
    // yaml throws a ReferenceError when aliases expand past maxAliasCount (a billion laughs).
    const message = err instanceof ReferenceError ? `YAML aliases expand too far (more than ${YAML_LIMITS.aliases})` : (err as Error).message;
    throw new HttpError(400, 'invalid_yaml', message.slice(0, 300));
  }
}
