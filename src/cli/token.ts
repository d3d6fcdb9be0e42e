import { parseArgs } from 'node:util';
import { signToken, parseTtl } from '../push/token.ts';
import { idSchema } from '../queues/common.ts';
import { registerCommand, UsageError } from './registry.ts';

const USAGE = 'tally token --user U [--ttl 1h]   (ttl: 90s, 15m, 1h, 7d or seconds)';

/** Prints a WebSocket client token (CONTRACT §5) signed with TALLY_WS_SECRET, for testing and for services that mint them. */
registerCommand('token', async (args, env) => {
  const { values } = parseArgs({ args, options: { user: { type: 'string' }, ttl: { type: 'string', default: '1h' } } });
  if (!values.user) throw new UsageError(USAGE);
  const user = idSchema.safeParse(values.user);
  if (!user.success) throw new UsageError(`--user ${JSON.stringify(values.user)} is not a user id: ${user.error.issues[0]?.message ?? 'invalid'}`);
  const ttl = parseTtl(values.ttl);
  if (ttl === null) throw new UsageError(`--ttl ${JSON.stringify(values.ttl)} is not a duration (90s, 15m, 1h, 7d or seconds)`);
  // The gateway would refuse it (401): say so now rather than hand out a token that never works.
  if (ttl > env.TALLY_WS_MAX_TTL_SECONDS) {
    throw new UsageError(`--ttl ${values.ttl} is longer than TALLY_WS_MAX_TTL_SECONDS (${env.TALLY_WS_MAX_TTL_SECONDS} s)`);
  }
  if (!env.TALLY_WS_SECRET) throw new UsageError('TALLY_WS_SECRET is not set: it must be the secret the running tally uses');
  const exp = Math.floor(Date.now() / 1000) + ttl;
  process.stdout.write(`${signToken(env.TALLY_WS_SECRET, { userId: values.user, exp })}\n`);
});
