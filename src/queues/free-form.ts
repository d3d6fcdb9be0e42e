import { canonicalJson, sha256 } from '../config/store.ts';
import { stringProblem, wellFormed } from './common.ts';

export interface FreeFormLimits {
  /** Most levels of nesting (the value itself is level 0; `{a: {}}` is 2 deep). */
  maxDepth: number;
  /** Most bytes of its JSON (UTF-8). */
  maxBytes: number;
  /** Which strings and keys are refused: `control` = any of U+0000–U+001F (contract v2 §3), `nul` = U+0000 only. */
  refuse: 'control' | 'nul';
}

/** `metadata` on a payload (contract v2 §3): 16 KB, 32 levels, strings and keys like any payload string. */
export const METADATA_LIMITS: FreeFormLimits = { maxDepth: 32, maxBytes: 16 * 1024, refuse: 'control' };

/** What dead_letters keeps of a payload as sent (a bigger or deeper one is kept as a summary, see storablePayload). */
export const STORED_PAYLOAD_LIMITS: FreeFormLimits = { maxDepth: 64, maxBytes: 64 * 1024, refuse: 'nul' };

/**
 * The first reason a free-form JSON value breaks the limits, or null. Iterative: a payload nested 100,000 deep is
 * measured without recursion and refused as too deep before anything serialises it. Also refuses `__proto__` as a
 * key (an object built from it by assignment would get a new prototype) and ill-formed strings.
 */
export function freeFormProblem(value: unknown, limits: FreeFormLimits): string | null {
  const stack: { v: unknown; depth: number }[] = [{ v: value, depth: 0 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (typeof v === 'string') {
      const problem = stringProblem(v, limits.refuse === 'nul');
      if (problem) return `a string ${problem}`;
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= limits.maxDepth) return `nested deeper than ${limits.maxDepth} levels`;
    for (const key of Object.keys(v)) {
      if (key === '__proto__') return '__proto__ is not allowed as a key';
      const problem = stringProblem(key, limits.refuse === 'nul');
      if (problem) return `a key ${problem}`;
      stack.push({ v: (v as Record<string, unknown>)[key], depth: depth + 1 });
    }
  }
  // Depth is bounded now, so serialising cannot overflow the stack.
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
  return bytes > limits.maxBytes ? `larger than ${limits.maxBytes} bytes of JSON (${bytes})` : null;
}

/** How much of an unstorable payload's JSON a dead letter keeps. */
const HEAD_CHARS = 2048;

/**
 * A payload as dead_letters can keep it: as sent when it fits STORED_PAYLOAD_LIMITS, else a summary — its size, its
 * canonical SHA-256 (the payload hash a replay is compared by) and the first 2 KB of its JSON as text. A dead letter
 * must never fail to be written because of what it records (jsonb refuses NUL and lone surrogates).
 */
export function storablePayload(payload: unknown): unknown {
  const problem = freeFormProblem(payload, STORED_PAYLOAD_LIMITS);
  if (problem === null) return payload;
  const text = canonicalJson(payload) ?? 'undefined';
  let head = text.slice(0, HEAD_CHARS);
  if (!wellFormed(head)) head = head.slice(0, -1); // cut inside a surrogate pair (JSON escapes lone ones)
  return { truncated: true, problem, chars: text.length, sha256: sha256(text), head };
}
