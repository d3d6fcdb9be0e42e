import type { Db } from '../../db/client.ts';

export interface AuditRecord {
  credential: 'bearer' | 'basic';
  ip: string;
  user_agent: string | null;
  method: string;
  path: string;
  action: string;
  queue: string | null;
  job_id: string | null;
  request: unknown;
}

/** Records an admin action before it runs; returns the row's id for its outcome. */
export async function insertAudit(db: Db, r: AuditRecord): Promise<bigint> {
  const [row] = await db<{ audit_id: bigint }[]>`
    INSERT INTO admin_audit (credential, ip, user_agent, method, path, action, queue, job_id, request)
    VALUES (${r.credential}, ${r.ip}, ${r.user_agent}, ${r.method}, ${r.path}, ${r.action}, ${r.queue}, ${r.job_id},
      ${r.request === undefined ? null : db.json(r.request as never)})
    RETURNING audit_id`;
  return row!.audit_id;
}

/** The answer the action got (the one update the table allows). */
export async function auditOutcome(db: Db, auditId: bigint, status: number): Promise<void> {
  await db`UPDATE admin_audit SET status = ${status} WHERE audit_id = ${String(auditId)}::bigint AND status IS NULL`;
}
