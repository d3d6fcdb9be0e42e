import { parseConfigDocument, type ConfigDocument } from '../../config/document.ts';
import type { Tx } from '../../db/client.ts';

/**
 * For each instant, the config version in force then: the newest applied at or before it. An instant
 * before every version gets the oldest one (there was no price before it; the first is the best guess).
 * Instants are compared at millisecond resolution (an event's occurred_at, or its job's enqueue time, has no
 * more): a version applied at 10.1234 s is in force for an event enqueued at 10.123 s, after the apply returned.
 */
export async function configVersionsAt(tx: Tx, times: Date[]): Promise<number[]> {
  if (times.length === 0) return [];
  const rows = await tx<{ i: bigint; version: bigint | null }[]>`
    SELECT t.i, coalesce(
      (SELECT c.version FROM config_documents c WHERE c.applied_at < t.at + interval '1 millisecond' ORDER BY c.applied_at DESC, c.version DESC LIMIT 1),
      (SELECT min(version) FROM config_documents)) AS version
    FROM unnest(${times.map((t) => t.toISOString())}::timestamptz[]) WITH ORDINALITY AS t(at, i)
    ORDER BY t.i`;
  return rows.map((r) => Number(r.version ?? 0));
}

// Stored versions never change, so a parsed document can be kept for as long as the process lives.
const docs = new Map<number, ConfigDocument>();
const MAX_CACHED = 64;

export async function configVersion(tx: Tx, version: number): Promise<ConfigDocument | undefined> {
  const hit = docs.get(version);
  if (hit) return hit;
  const [row] = await tx<{ doc: unknown }[]>`SELECT doc FROM config_documents WHERE version = ${version}`;
  if (!row) return undefined;
  const doc = parseConfigDocument(row.doc);
  if (docs.size >= MAX_CACHED) docs.delete(docs.keys().next().value!);
  docs.set(version, doc);
  return doc;
}
