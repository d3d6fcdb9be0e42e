// `node --import tsx bench/profile-summary.ts FILE.cpuprofile… [--top N] [--jobs N]` (--jobs: also µs per job): where a worker's CPU went during a
// timed drain (bench --profile DIR writes the files): self time by category — BullMQ, its Redis client, postgres.js,
// tally's own code, JSON, GC — then the top functions. Used for the profile summary in docs/benchmarks.md.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const JSON_FUNCTIONS = new Set(['stringify', 'parse', 'JSONStringify', 'JSONParse', 'SerializeJSONObject']);

export function categoryOf(fn: string, url: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'V8/native (program)';
  const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
  if (mod === 'bullmq') return 'BullMQ';
  if (mod === 'ioredis' || mod === 'redis-parser' || mod === 'cluster-key-slot' || mod === 'denque') return 'ioredis';
  if (mod === 'msgpackr') return 'msgpackr (BullMQ)';
  if (mod === 'postgres') return 'postgres.js';
  if (mod === 'pino' || mod === 'sonic-boom' || mod === 'thread-stream') return 'pino';
  if (mod === 'zod') return 'zod';
  if (mod) return mod;
  if (/\/src\//.test(url)) return 'tally (src/)';
  if (/\/bench\//.test(url)) return 'bench harness';
  if (url.startsWith('node:')) return 'Node core';
  if (url === '' && JSON_FUNCTIONS.has(fn)) return 'JSON';
  return url === '' ? 'V8 builtins' : 'other';
}

/** Native frames that write to a socket: one `write` syscall each (a Redis command, a PostgreSQL message batch). */
const SOCKET_WRITES = new Set(['writeBuffer', 'writev', 'writeUtf8String', 'writeLatin1String', 'writeAsciiString', 'writeUcs2String']);

const shortUrl = (url: string) => {
  const i = url.lastIndexOf('node_modules/');
  if (i >= 0) return url.slice(i + 'node_modules/'.length);
  return url.replace(/^.*\/(src|bench)\//, '$1/').replace(/^file:\/\//, '');
};

export function summariseProfile(p: CpuProfile, top = 20) {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n);
  /** A builtin or native frame (no url) counts for the nearest caller that has one: whose work it did. */
  const categoryFor = (n: ProfileNode): string => {
    const own = categoryOf(n.callFrame.functionName, n.callFrame.url);
    if (own !== 'V8 builtins' && own !== 'Node core') return own;
    for (let q = parent.get(n.id); q; q = parent.get(q.id)) {
      const c = categoryOf(q.callFrame.functionName, q.callFrame.url);
      if (c === 'V8 builtins' || c === 'Node core' || c === 'other') continue;
      if (c === 'bench harness') return 'bench probe (the profiler itself)';
      return `${c}: ${SOCKET_WRITES.has(n.callFrame.functionName) ? 'socket writes' : own === 'Node core' ? 'Node core' : 'builtins'}`;
    }
    return own;
  };
  const self = new Map<number, number>();
  // Self time per node from the samples and the time since the previous one (µs).
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const cats = new Map<string, number>();
  const fns = new Map<string, { us: number; cat: string }>();
  let busy = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const cat = categoryFor(n);
    cats.set(cat, (cats.get(cat) ?? 0) + us);
    if (cat === 'idle') continue;
    busy += us;
    const file = shortUrl(n.callFrame.url);
    // tsx compiles each file to one line, so a line number says nothing there: the file alone.
    const line = n.callFrame.lineNumber > 0 ? `:${n.callFrame.lineNumber + 1}` : '';
    const key = `${n.callFrame.functionName || '(anonymous)'} ${file}${file ? line : ''}`.trim();
    const f = fns.get(`${key}\0${cat}`) ?? { us: 0, cat };
    f.us += us;
    fns.set(`${key}\0${cat}`, f);
  }
  const wall = p.endTime - p.startTime;
  return {
    wallMs: wall / 1000,
    busyMs: busy / 1000,
    categories: [...cats].filter(([c]) => c !== 'idle').sort((a, b) => b[1] - a[1]).map(([c, us]) => ({ category: c, ms: us / 1000, share: us / busy })),
    functions: [...fns].sort((a, b) => b[1].us - a[1].us).slice(0, top).map(([key, f]) => ({ fn: key.split('\0')[0]!, category: f.cat, ms: f.us / 1000, share: f.us / busy })),
  };
}

/** The coarse groups of docs/benchmarks.md's profile table. */
export function groupOf(category: string): string {
  if (/^(BullMQ|ioredis|msgpackr)/.test(category)) return 'BullMQ + ioredis (+ msgpackr), incl. their socket writes';
  if (/^postgres\.js/.test(category)) return 'postgres.js, incl. its socket writes';
  if (/^tally/.test(category)) return "tally's own code (src/)";
  if (/^zod/.test(category)) return 'zod';
  if (category === 'GC' || category === 'JSON') return category;
  if (/^bench probe/.test(category)) return 'the profiler itself';
  return 'other (Node core, V8 builtins)';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '20' }, jobs: { type: 'string' } } });
  const jobs = values.jobs ? Number(values.jobs) : 0;
  const perJob = (ms: number) => (jobs ? ` ${((ms * 1000) / jobs).toFixed(1)} |` : '');
  for (const file of positionals) {
    const s = summariseProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(values.top));
    const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
    const head = jobs ? ' µs/job |' : '';
    const rule = jobs ? '---:|' : '';
    process.stdout.write(`${file}: ${s.busyMs.toFixed(0)} ms busy of ${s.wallMs.toFixed(0)} ms${jobs ? ` (${((s.busyMs * 1000) / jobs).toFixed(1)} µs per job of ${jobs})` : ''}\n\n| category | self ms | share |${head}\n|---|---:|---:|${rule}\n`);
    for (const c of s.categories) process.stdout.write(`| ${c.category} | ${c.ms.toFixed(0)} | ${pct(c.share)} |${perJob(c.ms)}\n`);
    const groups = new Map<string, number>();
    for (const c of s.categories) groups.set(groupOf(c.category), (groups.get(groupOf(c.category)) ?? 0) + c.ms);
    process.stdout.write(`\n| group | self ms | share |${head}\n|---|---:|---:|${rule}\n`);
    for (const [g, ms] of [...groups].sort((a, b) => b[1] - a[1])) process.stdout.write(`| ${g} | ${ms.toFixed(0)} | ${pct(ms / s.busyMs)} |${perJob(ms)}\n`);
    process.stdout.write(`\n| function | category | self ms | share |${head}\n|---|---|---:|---:|${rule}\n`);
    for (const f of s.functions) process.stdout.write(`| \`${f.fn}\` | ${f.category} | ${f.ms.toFixed(0)} | ${pct(f.share)} |${perJob(f.ms)}\n`);
    process.stdout.write('\n');
  }
}
