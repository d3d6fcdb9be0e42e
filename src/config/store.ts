import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { Db } from '../db/client.ts';
import { EMPTY_CONFIG, parseConfigDocument, type ConfigDocument } from './document.ts';

export interface LoadedConfig {
  version: number;
  doc: ConfigDocument;
}

export interface ApplySummary {
  version: number;
  changed: boolean;
}

/** An array or object being written out: its parts so far and the next child to visit. */
type Frame =
  | { array: true; src: unknown[]; i: number; parts: string[] }
  | { array: false; src: Record<string, unknown>; keys: string[]; i: number; parts: string[] };

function open(value: unknown): Frame | undefined {
  if (Array.isArray(value)) return { array: true, src: value, i: 0, parts: [] };
  if (value && typeof value === 'object') {
    return { array: false, src: value as Record<string, unknown>, keys: Object.keys(value).sort(), i: 0, parts: [] };
  }
  return undefined;
}

/** Appends a child's text to its frame, as the recursive definition did (an undefined element writes nothing). */
function append(frame: Frame, text: string | undefined): void {
  if (frame.array) frame.parts.push(text ?? '');
  else frame.parts.push(`${JSON.stringify(frame.keys[frame.i])}:${text}`);
  frame.i++;
}

/**
 * Stable JSON (sorted keys) — the basis of config and payload hashes. It runs on every job before validation, so it
 * is iterative: a payload nested thousands deep cannot overflow the stack. Its output is exactly that of the
 * recursive definition it replaced (stored payload hashes depend on it): arrays `[a,b]`, objects `{"k":v}` with
 * keys sorted, anything else as JSON.stringify writes it.
 */
export function canonicalJson(value: unknown): string {
  const root = open(value);
  if (!root) return JSON.stringify(value);
  const stack: Frame[] = [root];
  for (;;) {
    const top = stack[stack.length - 1]!;
    if (top.i === (top.array ? top.src.length : top.keys.length)) {
      stack.pop();
      const text = top.array ? `[${top.parts.join(',')}]` : `{${top.parts.join(',')}}`;
      const parent = stack[stack.length - 1];
      if (!parent) return text;
      append(parent, text);
      continue;
    }
    const child = top.array ? top.src[top.i] : top.src[top.keys[top.i]!];
    const frame = open(child);
    if (frame) stack.push(frame);
    else append(top, JSON.stringify(child));
  }
}

// One-shot crypto.hash (Node ≥ 20.12) skips building a Hash stream object: about half the cost per job.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

export function sha256(text: string): string {
  return oneShot ? oneShot('sha256', text, 'hex') : createHash('sha256').update(text).digest('hex');
}

export async function readConfigFile(path: string): Promise<unknown> {
  const text = await readFile(path, 'utf8');
  return path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
}

/**
 * Validates and stores a config document as a new version. Applying the document in force again changes
 * nothing (idempotent). Versions are kept: the history says which rules were in force when.
 */
export async function applyConfig(db: Db, input: unknown): Promise<ApplySummary> {
  const doc = parseConfigDocument(input);
  const hash = sha256(canonicalJson(doc));
  const [current] = await db<{ version: bigint; doc_hash: string }[]>`
    SELECT version, doc_hash FROM config_documents ORDER BY version DESC LIMIT 1`;
  if (current && current.doc_hash === hash) return { version: Number(current.version), changed: false };
  const [row] = await db<{ version: bigint }[]>`
    INSERT INTO config_documents (doc, doc_hash) VALUES (${db.json(doc as never)}, ${hash}) RETURNING version`;
  return { version: Number(row!.version), changed: true };
}

/**
 * The config in force, cached per process. `get(db)` costs one indexed lookup of the newest version, so a
 * config applied a moment ago is what the next ledger transaction prices with.
 */
export class ConfigCache {
  private loaded: LoadedConfig = { version: 0, doc: EMPTY_CONFIG };

  async get(db: Db): Promise<LoadedConfig> {
    const [row] = await db<{ version: bigint }[]>`SELECT max(version) AS version FROM config_documents`;
    return this.ensure(db, Number(row?.version ?? 0));
  }

  /** Loads `version` unless it is the one cached. */
  async ensure(db: Db, version: number): Promise<LoadedConfig> {
    if (version === this.loaded.version) return this.loaded;
    if (version === 0) return (this.loaded = { version: 0, doc: EMPTY_CONFIG });
    const [row] = await db<{ doc: unknown }[]>`SELECT doc FROM config_documents WHERE version = ${version}`;
    // Stored documents were validated on apply; parsing again fills defaults added since.
    this.loaded = { version, doc: parseConfigDocument(row!.doc) };
    return this.loaded;
  }

  peek(): LoadedConfig {
    return this.loaded;
  }
}
