#!/usr/bin/env node
// Patches postgres.js (porsager/postgres) so a PostgreSQL connection that dies under a transaction can never kill
// the process. Run by `npm install` / `npm ci` (package.json "postinstall"); idempotent; refuses loudly if the
// installed client is not the version it was written for.
//
// The defect (upstream #1154, #1208, unfixed in 3.4.9): when a backend dies, closed() sets `socket = null` and
// reconnects on a later timer. A query issued on the connection in between — sql.begin()'s own ROLLBACK after the
// failed query, or the next statement of a transaction that had not yet seen the failure — is written into the
// buffer and flushed from a setImmediate: `socket.write` on null, a TypeError thrown outside any promise, so an
// uncaughtException ends the process. Also, closed() and terminate() cancel a pending flush without forgetting
// it, so a reconnected connection never schedules a flush again and bytes meant for the dead session could reach
// the next one.
//
// The patch: (1) a query issued on a connection without a socket is rejected at once with CONNECTION_CLOSED (a
// transient fault to tally: the transaction is retried), leaving the connection in the closed queue; (2) a flush that finds no socket settles the queries it
// carried with CONNECTION_CLOSED instead of throwing; (3) closed() and terminate() drop the pending buffer and
// its timer; (4) closed() forgets the dead session's query and error: the first ReadyForQuery of the reconnected
// session otherwise hands the old FATAL (57P01 after pg_terminate_backend) to the first new query.
// (5) a session that dies while it fetches its array types (the first thing a new connection does) no longer leaves
// an unhandled rejection behind (fetchArrayTypes() is called un-awaited): pg_terminate_backend at that moment ended
// the whole process (seen in CI as 57P01 on the type query); (6) when that happens, closed() fails the type fetch
// and starts the next session clean: the old session's FATAL used to fail the waiting query at the next session's
// first ReadyForQuery, which then skipped its own type fetch, so array parameters were sent as plain text (22P02 on
// every `${ids}::bigint[]` of that connection).
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PATCHED_VERSION = '3.4.9';
export const MARKER = 'tally-patch porsager/postgres#1208';

/** [pristine, patched] pairs, each pristine text occurring exactly once in connection.js. */
export const REPLACEMENTS = [
  [
    `  function execute(q) {
    if (terminated)
      return queryError(q, Errors.connection('CONNECTION_DESTROYED', options))
`,
    `  function execute(q) {
    if (terminated)
      return queryError(q, Errors.connection('CONNECTION_DESTROYED', options))

    if (!socket) { // ${MARKER}: closed, not reconnected yet
      queryError(q, Errors.connection('CONNECTION_CLOSED', options))
      return true // not "full": that would take the connection out of the closed queue for good
    }
`,
  ],
  [
    `  function nextWrite(fn) {
    const x = socket.write(chunk, fn)
`,
    `  function nextWrite(fn) {
    if (!socket) { // ${MARKER}: settle what was written, never throw from a timer
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      const err = Errors.connection('CONNECTION_CLOSED', options)
      query && queryError(query, err)
      while (sent.length)
        queryError(sent.shift(), err)
      return false
    }
    const x = socket.write(chunk, fn)
`,
  ],
  [
    `    terminated = true
    if (stream || query || initial || sent.length)
      error(Errors.connection('CONNECTION_DESTROYED', options))

    clearImmediate(nextWriteTimer)
`,
    `    terminated = true
    if (stream || query || initial || sent.length)
      error(Errors.connection('CONNECTION_DESTROYED', options))

    clearImmediate(nextWriteTimer)
    chunk = nextWriteTimer = null // ${MARKER}
`,
  ],
  [
    `    incomings = null
    clearImmediate(nextWriteTimer)
    socket.removeListener('data', data)
`,
    `    incomings = null
    clearImmediate(nextWriteTimer)
    chunk = nextWriteTimer = null // ${MARKER}
    socket.removeListener('data', data)
`,
  ],
  [
    `    !hadError && (query || sent.length) && error(Errors.connection('CONNECTION_CLOSED', options, socket))
    closedTime = performance.now()
`,
    `    !hadError && (query || sent.length) && error(Errors.connection('CONNECTION_CLOSED', options, socket))
    query = results = errorResponse = null // ${MARKER}: the dead session's queries are settled by now,
    result = new Result() // and its last error must not fail the first query of the next session
    closedTime = performance.now()
`,
  ],
  [
    `    socket.removeAllListeners()
    socket = null

    if (initial)
      return reconnect()
`,
    `    socket.removeAllListeners()
    socket = null

    if (initial) { // ${MARKER}: the session died while it was starting (its type fetch in flight): that fetch
      query && query !== initial && queryError(query, Errors.connection('CONNECTION_CLOSED', options))
      query = results = errorResponse = null // fails now, not the next session's first ReadyForQuery, which would
      result = new Result() // reject \`initial\` with the dead session's error and skip the next type fetch for good
      return reconnect()
    }
`,
  ],
  [
    `      if (needsTypes) {
        initial.reserve && (initial = null)
        return fetchArrayTypes()
      }
`,
    `      if (needsTypes) {
        initial.reserve && (initial = null)
        // ${MARKER}: a session that dies while fetching its types (pg_terminate_backend, a cut socket) rejected
        // this un-awaited promise: an unhandled rejection, which ends a Node process. Its queries learn of the
        // death through error(); the next session fetches the types again (connected() resets needsTypes).
        return fetchArrayTypes().catch(() => {})
      }
`,
  ],
];

/** The files a Node process may load: the ESM build (import) and the CommonJS build (require). */
export const FILES = ['src/connection.js', 'cjs/src/connection.js'];

/** Applies the patch to one connection.js text; returns it unchanged when already patched. */
export function patchText(text, file = 'connection.js') {
  if (REPLACEMENTS.every(([, patched]) => text.includes(patched))) return text;
  // Patched by an earlier revision of this script (fewer replacements): back to pristine, then patched whole.
  let out = REPLACEMENTS.reduce((t, [pristine, patched]) => t.replace(patched, pristine), text);
  for (const [pristine, patched] of REPLACEMENTS) {
    const at = out.indexOf(pristine);
    if (at < 0 || out.indexOf(pristine, at + 1) >= 0) {
      throw new Error(`${file}: the code this patch replaces is not there exactly once; re-check porsager/postgres#1208 against the installed version`);
    }
    out = out.slice(0, at) + patched + out.slice(at + pristine.length);
  }
  return out;
}

/** Patches the postgres package in `dir` (default: this project's node_modules/postgres). */
export function patchPackage(dir) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  if (pkg.version !== PATCHED_VERSION) {
    throw new Error(`postgres ${pkg.version} is installed; scripts/patch-postgres.mjs was written for ${PATCHED_VERSION} (see porsager/postgres#1208: drop the patch if fixed upstream, else update it)`);
  }
  const changed = [];
  for (const rel of FILES) {
    const file = join(dir, rel);
    if (!existsSync(file)) continue;
    const before = readFileSync(file, 'utf8');
    const after = patchText(before, rel);
    if (after !== before) {
      // A new file renamed over the old, never a write in place: package managers hard-link installed files
      // to a shared store (pnpm, or a copied node_modules), and patching that inode would patch every copy.
      writeFileSync(`${file}.tally-patch`, after);
      renameSync(`${file}.tally-patch`, file);
      changed.push(rel);
    }
  }
  return changed;
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] === self) {
  const dir = process.argv[2] ?? join(dirname(self), '..', 'node_modules', 'postgres');
  if (!existsSync(dir)) {
    console.log(`patch-postgres: ${dir} not installed; nothing to patch`);
  } else {
    try {
      const changed = patchPackage(dir);
      console.log(changed.length ? `patch-postgres: patched ${changed.join(', ')}` : 'patch-postgres: already patched');
    } catch (err) {
      console.error(`patch-postgres: ${err.message}`);
      process.exit(1);
    }
  }
}
