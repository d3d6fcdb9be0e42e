import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { components, paths } from './openapi.ts';

export type { components, paths };
/** A tally error body: `{error:{code, message, details?}}`. */
export type TallyError = components['schemas']['Error'];
export type TallyClient = Client<paths>;

export interface TallyClientOptions extends Omit<ClientOptions, 'baseUrl'> {
  /** Where tally listens, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** TALLY_API_TOKEN (or the admin token for admin routes); sent as `Authorization: Bearer …`. */
  token?: string;
}

/**
 * A typed HTTP client for tally, typed from its OpenAPI document (openapi-typescript) and running on
 * openapi-fetch: paths, parameters, bodies and responses are checked at compile time.
 *
 *   const tally = createTallyClient({ baseUrl: 'http://127.0.0.1:8080', token: process.env.TALLY_API_TOKEN });
 *   const { data, error } = await tally.GET('/v1/users/{user_id}/balances/{asset}', { params: { path: { user_id: 'u1', asset: 'points' } } });
 */
export function createTallyClient(opts: TallyClientOptions): TallyClient {
  const { token, headers, ...rest } = opts;
  return createClient<paths>({
    ...rest,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(headers as Record<string, string> | undefined) },
  });
}
