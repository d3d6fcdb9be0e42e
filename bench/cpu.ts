import { readFileSync } from 'node:fs';
import type { Sql } from '../src/db/client.ts';

/**
 * CPU time of PostgreSQL backends serving one bench database, from /proc (Linux; elsewhere it reads nothing).
 * On a shared 2-core box wall-clock rates are noisy; CPU per job is the steadier figure for comparing designs.
 */
const TICK_MS = 10; // USER_HZ is 100 on every Linux we run on (getconf CLK_TCK)

function procCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) * TICK_MS;
  } catch {
    return null;
  }
}

export type CpuSnapshot = Map<number, number>;

export async function backendCpu(sql: Sql, dbName: string): Promise<CpuSnapshot> {
  const rows = await sql<{ pid: number }[]>`SELECT pid FROM pg_stat_activity WHERE datname = ${dbName} AND pid <> pg_backend_pid()`;
  const snap: CpuSnapshot = new Map();
  for (const { pid } of rows) {
    const ms = procCpuMs(pid);
    if (ms !== null) snap.set(pid, ms);
  }
  return snap;
}

/** CPU the backends used between two snapshots (a backend born in between counts from zero). */
export function cpuBetween(before: CpuSnapshot, after: CpuSnapshot): number {
  let ms = 0;
  for (const [pid, t] of after) ms += t - (before.get(pid) ?? 0);
  return ms;
}

/** Total CPU of some processes (the --procs children), for the same accounting as in-process workers. */
export function pidsCpu(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (procCpuMs(pid) ?? 0), 0);
}
