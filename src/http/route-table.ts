import type { FastifyInstance, RouteOptions } from 'fastify';

/**
 * Every route one server registered, as fastify reported it (`onRoute`, so plugins' routes too): the 405 answer
 * looks up which methods a path has, and the OpenAPI test walks it to check each /v1 route is documented.
 */
export interface RouteEntry {
  method: string;
  url: string;
  config: RouteOptions['config'];
  schema: RouteOptions['schema'];
}

/** `/v1/users/:user_id/balances/:asset` → a regex matching concrete paths; `*` matches the rest. */
function compile(url: string): RegExp {
  const source = url
    .split('/')
    .map((seg) => (seg === '*' ? '.*' : seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`); // exact: fastify does not ignore a trailing slash, so neither does this
}

export class RouteTable {
  private readonly rows: { entry: RouteEntry; pattern: RegExp }[] = [];

  add(entry: RouteEntry): void {
    this.rows.push({ entry, pattern: compile(entry.url) });
  }

  get routes(): RouteEntry[] {
    return this.rows.map((r) => r.entry);
  }

  /** The methods some route answers on this concrete path (empty: no route has the path at all). */
  allowedMethods(path: string): string[] {
    const methods = new Set<string>();
    for (const r of this.rows) if (r.pattern.test(path)) methods.add(r.entry.method);
    return [...methods].sort();
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    routeTable: RouteTable;
  }
}

/** Call first on the root instance: routes registered afterwards, in any scope, are recorded. */
export function trackRoutes(app: FastifyInstance): RouteTable {
  const table = new RouteTable();
  app.decorate('routeTable', table);
  app.addHook('onRoute', (route) => {
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
      table.add({ method, url: route.url ?? route.path, config: route.config, schema: route.schema });
    }
  });
  return table;
}
