import type { Db } from '../../db/client.ts';

export interface ConfigRow {
  version: bigint;
  doc: unknown;
  applied_at: Date;
}

/** The newest applied config document (the one in force), or undefined before any. */
export async function latestConfig(db: Db): Promise<ConfigRow | undefined> {
  const [row] = await db<ConfigRow[]>`SELECT version, doc, applied_at FROM config_documents ORDER BY version DESC LIMIT 1`;
  return row;
}
