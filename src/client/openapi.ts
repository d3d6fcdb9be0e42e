// Generated from tally's OpenAPI document by `npm run client:types` (openapi-typescript). Do not edit:
// change the route's zod schemas and run it again. test/http-openapi.test.ts fails while this file is stale.
/* eslint-disable */
export interface paths {
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Are PostgreSQL and Redis reachable? (no auth, never rate limited) */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            postgres: string;
                            redis: string;
                            /** @enum {string} */
                            status: "ok" | "error";
                        };
                    };
                };
                /** @description Service Unavailable */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            postgres: string;
                            redis: string;
                            /** @enum {string} */
                            status: "ok" | "error";
                        };
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/metrics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/readyz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** May a load balancer send this process traffic? (no auth, never rate limited) */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            config: string;
                            postgres: string;
                            redis: string;
                            schema: string;
                            shutdown: string;
                            /** @enum {string} */
                            status: "ready" | "not_ready";
                        };
                    };
                };
                /** @description Service Unavailable */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            config: string;
                            postgres: string;
                            redis: string;
                            schema: string;
                            shutdown: string;
                            /** @enum {string} */
                            status: "ready" | "not_ready";
                        };
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/affinity/adjust": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Adjust an affinity by a delta (bypasses rules, cooldowns and caps; still clamped) */
        post: {
            parameters: {
                query?: never;
                header?: {
                    /** @description Same key + same request → the first response again; another request → 409 idempotency_conflict. Kept 24 h. */
                    "idempotency-key"?: string;
                };
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        delta: number;
                        device_id: string;
                        event_id?: string;
                        operator_id: string;
                        reason: string;
                        user_id: string;
                    };
                };
            };
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            after?: number;
                            before?: number;
                            change?: number;
                            event_id: string;
                            level_after?: number;
                            level_before?: number;
                            outcome: string;
                            rewards?: unknown[];
                        } & {
                            [key: string]: unknown;
                        };
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description The API token on an admin route */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Conflicts with an earlier request (same id, other content) */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Well-formed but refused by the rules in force (config, pricing) */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Accepted but not applied in time */
                504: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/config": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The config document in force, with its version and when it was applied (secrets redacted) */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            applied_at: string;
                            document: {
                                [key: string]: unknown;
                            };
                            redacted: string[];
                            version: number;
                        };
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description The API token on an admin route */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Not found */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        /** Apply a config document (as `tally config apply`); refused as a whole if invalid */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        [key: string]: unknown;
                    };
                    "application/yaml": {
                        [key: string]: unknown;
                    };
                };
            };
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            changed: boolean;
                            version: number;
                        };
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description The API token on an admin route */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Body too large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Unsupported content type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Well-formed but refused by the rules in force (config, pricing) */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/ledger/adjust": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Correct a balance by a signed amount: an `adjust` entry with operator and reason (exactly once by event_id) */
        post: {
            parameters: {
                query?: never;
                header?: {
                    /** @description Same key + same request → the first response again; another request → 409 idempotency_conflict. Kept 24 h. */
                    "idempotency-key"?: string;
                };
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["LedgerAdjustRequest"];
                };
            };
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["LedgerAdjustResult"];
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description The API token on an admin route */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Conflicts with an earlier request (same id, other content) */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Well-formed but refused by the rules in force (config, pricing) */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/maintenance/{task}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Run one maintenance task now (expire, decay, reconcile, …) */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    task: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            task: string;
                        } & {
                            [key: string]: unknown;
                        };
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description The API token on an admin route */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Not found */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/admin/users/{user_id}/devices/{device_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Whether a device is active, with its affinity value and level (a device never seen: active, 0) */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    device_id: string;
                    user_id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["DeviceStatus"];
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description The API token on an admin route */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        /** Activate or deactivate a device (idempotent); a device never seen is created */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    device_id: string;
                    user_id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        active: boolean;
                    };
                };
            };
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["DeviceStatus"];
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description The API token on an admin route */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Enqueue 1–1000 queue payloads (each with its type): jobId = event_id (or ?mode=batch: one batch job per queue), a bad one answered and not enqueued */
        post: {
            parameters: {
                query?: {
                    mode?: "jobs" | "batch";
                    wait?: "true" | "false";
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["EventsRequest"];
                };
            };
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["EventsApplied"];
                    };
                };
                /** @description Accepted */
                202: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["EventsAccepted"];
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Body too large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description A dependency is unavailable */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/holds": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Reserve the max cost of some work (idempotent by event_id) */
        post: {
            parameters: {
                query?: never;
                header?: {
                    /** @description Same key + same request → the first response again; another request → 409 idempotency_conflict. Kept 24 h. */
                    "idempotency-key"?: string;
                };
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        amount?: number;
                        asset: string;
                        event_id: string;
                        source_type: string;
                        ttl_seconds: number;
                        usage_estimate?: components["schemas"]["Usage"];
                        user_id: string;
                    };
                };
            };
            responses: {
                /** @description Created */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Hold"];
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Not enough available balance */
                402: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Conflicts with an earlier request (same id, other content) */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Well-formed but refused by the rules in force (config, pricing) */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/holds/{hold_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A hold */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    hold_id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Hold"];
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Not found */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        /** Release a hold */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    hold_id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Hold"];
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Not found */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/orders": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** A pending order for a product */
        post: {
            parameters: {
                query?: never;
                header?: {
                    /** @description Same key + same request → the first response again; another request → 409 idempotency_conflict. Kept 24 h. */
                    "idempotency-key"?: string;
                };
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        sku: string;
                        user_id: string;
                    };
                };
            };
            responses: {
                /** @description Created */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Order"];
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Conflicts with an earlier request (same id, other content) */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Well-formed but refused by the rules in force (config, pricing) */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/orders/{order_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** An order */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    order_id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Order"];
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Not found */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/orders/{order_id}/paid": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** The payment provider's callback: the first valid one grants the order */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    order_id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        amount_cents?: number | string;
                        order_id: string;
                        /** Format: date-time */
                        paid_at: string;
                        provider_ref: string;
                        /** @enum {string} */
                        status: "paid";
                    };
                };
            };
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            grant_event_id: string;
                            order_id: string;
                            /** @enum {string} */
                            status: "paid";
                        };
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Not found */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Conflicts with an earlier request (same id, other content) */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Well-formed but refused by the rules in force (config, pricing) */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/pricing/{asset}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The pricing rules in force for an asset, by source_type */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    asset: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            asset: string;
                            config_version: number;
                            rules: {
                                [key: string]: components["schemas"]["PricingRule"];
                            };
                        };
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Not found */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/products": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Products on sale (active), by sku */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            items: components["schemas"]["Product"][];
                        };
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/quotes": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** The max cost of some work, and whether the balance covers it */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        asset: string;
                        source_type: string;
                        usage?: components["schemas"]["Usage"];
                        user_id: string;
                    };
                };
            };
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            asset: string;
                            available: number;
                            balance: number;
                            held: number;
                            required: number;
                            source_type: string;
                            sufficient: boolean;
                            user_id: string;
                        };
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Well-formed but refused by the rules in force (config, pricing) */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/stream": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The live event stream: connect with a WebSocket client (a plain GET answers 401 or 426) */
        get: {
            parameters: {
                query?: {
                    since?: string;
                    token?: string;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Upgrade required */
                426: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{user_id}/balances/{asset}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A balance, exact at read time; with ?at=, as of that instant (BalanceAt) */
        get: {
            parameters: {
                query?: {
                    at?: string;
                };
                header?: never;
                path: {
                    asset: string;
                    user_id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Balance"] | components["schemas"]["BalanceAt"];
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{user_id}/batches": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Active batches with something left, in burn order */
        get: {
            parameters: {
                query?: {
                    asset?: string;
                    cursor?: string;
                    limit?: number;
                };
                header?: never;
                path: {
                    user_id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            items: components["schemas"]["Batch"][];
                            next_cursor: string | null;
                        };
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{user_id}/devices/{device_id}/affinity": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A device's affinity and level progress */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    device_id: string;
                    user_id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Affinity"];
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{user_id}/orders": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A user's orders, newest first (paginated) */
        get: {
            parameters: {
                query?: {
                    cursor?: string;
                    limit?: number;
                };
                header?: never;
                path: {
                    user_id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            items: components["schemas"]["Order"][];
                            next_cursor: string | null;
                        };
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{user_id}/statement": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Every entry of an asset in [from, to), streamed (ndjson or csv), with opening and closing balances */
        get: {
            parameters: {
                query: {
                    asset: string;
                    format?: "ndjson" | "csv";
                    from?: string;
                    to?: string;
                };
                header?: never;
                path: {
                    user_id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/x-ndjson": string;
                        "text/csv": string;
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{user_id}/transactions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Ledger entries, newest first; from (inclusive) / to (exclusive) bound created_at */
        get: {
            parameters: {
                query?: {
                    asset?: string;
                    cursor?: string;
                    from?: string;
                    limit?: number;
                    to?: string;
                };
                header?: never;
                path: {
                    user_id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            items: components["schemas"]["Transaction"][];
                            next_cursor: string | null;
                        };
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{user_id}/usage": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** What a user's charges cost in a window, by source type and model */
        get: {
            parameters: {
                query?: {
                    asset?: string;
                    window?: "24h" | "7d" | "30d" | "all";
                };
                header?: never;
                path: {
                    user_id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OK */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            asset: string | null;
                            by_model: {
                                amount: number;
                                count: number;
                                input_tokens: number;
                                model: string;
                                output_tokens: number;
                            }[];
                            by_source_type: {
                                amount: number;
                                count: number;
                                input_tokens: number;
                                output_tokens: number;
                                source_type: string;
                            }[];
                            count: number;
                            since: string | null;
                            tokens: {
                                input: number;
                                output: number;
                            };
                            total: number;
                            user_id: string;
                            /** @enum {string} */
                            window: "24h" | "7d" | "30d" | "all";
                        };
                    };
                };
                /** @description Malformed or out-of-range input (path, query or body) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Missing or invalid credentials */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Rate limit exceeded */
                429: {
                    headers: {
                        /** @description seconds until the window resets */
                        "retry-after"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        Affinity: {
            device_id: string;
            level: number;
            next_level: number | null;
            next_threshold: number | null;
            progress: number;
            user_id: string;
            value: number;
        };
        /** @description A job on the `affinity-events` queue (name = type, jobId = event_id). */
        AffinityAdjustPayload: {
            delta: number;
            device_id: string;
            event_id: string;
            operator_id: string;
            reason: string;
            /** @constant */
            type: "affinity.adjust";
            user_id: string;
        };
        /** @description A job on the `affinity-events` queue (name = type, jobId = event_id). */
        AffinityEventPayload: {
            device_id: string;
            event_id: string;
            metadata?: unknown;
            /** Format: date-time */
            occurred_at?: string;
            rule_key: string;
            source: string;
            /** @constant */
            type: "affinity.event";
            user_id: string;
        };
        /** @description A batch job on the `affinity-events` queue (name = batch, any unique jobId): 1–1000 of its payloads, each applied exactly as its own job would be (exactly once by its event_id, in order per user, a bad one failing alone). Its result is BatchJobResult. The worker checks the envelope (this shape, member types of this queue) for the whole job and each member alone. */
        AffinityEventsBatchJob: {
            events: components["schemas"]["AffinityEventsJob"][];
            /** @constant */
            type: "batch";
        };
        /** @description Any payload of the `affinity-events` queue. */
        AffinityEventsJob: components["schemas"]["AffinityEventPayload"] | components["schemas"]["AffinityAdjustPayload"];
        Balance: {
            asset: string;
            available: number;
            balance: number;
            held: number;
            overdrawn: boolean;
            total_consumed: number;
            total_expired: number;
            total_granted: number;
            user_id: string;
        };
        BalanceAt: {
            asset: string;
            at: string;
            balance: number;
            lapsed: number;
            recorded_balance: number;
            transaction_id: string | null;
            user_id: string;
        };
        Batch: {
            amount: number;
            asset: string;
            batch_id: string;
            created_at: string;
            expires_at: string | null;
            remaining: number;
            source: string;
            source_id: string | null;
        };
        /** @description The return value of a batch job. */
        BatchJobResult: {
            /** @constant */
            outcome: "batch";
            results: (({
                outcome: string;
            } & {
                [key: string]: unknown;
            }) | {
                failed: string;
                reason: string;
            })[];
        };
        /** @description A job on the `charges` queue (name = type, jobId = event_id). */
        ChargePayload: {
            amount?: number;
            asset: string;
            description?: string;
            event_id: string;
            hold_id?: string;
            /** Format: date-time */
            occurred_at?: string;
            /** @enum {string} */
            policy?: "postpaid" | "guarded";
            source_id: string;
            source_type: string;
            /** @constant */
            type: "charge";
            usage?: components["schemas"]["Usage"];
            user_id: string;
        };
        /** @description A batch job on the `charges` queue (name = batch, any unique jobId): 1–1000 of its payloads, each applied exactly as its own job would be (exactly once by its event_id, in order per user, a bad one failing alone). Its result is BatchJobResult. The worker checks the envelope (this shape, member types of this queue) for the whole job and each member alone. */
        ChargesBatchJob: {
            events: components["schemas"]["ChargesJob"][];
            /** @constant */
            type: "batch";
        };
        /** @description Any payload of the `charges` queue. */
        ChargesJob: components["schemas"]["ChargePayload"] | components["schemas"]["RefundPayload"];
        /** @description A tally config document (CONTRACT §6), as YAML or JSON. */
        ConfigDocument: {
            affinity?: {
                /**
                 * @default [
                 *       {
                 *         "level": 1,
                 *         "threshold": 0,
                 *         "rewards": []
                 *       }
                 *     ]
                 */
                levels: {
                    level: number;
                    /** @default [] */
                    rewards: {
                        amount: number;
                        asset: string;
                    }[];
                    threshold: number;
                }[];
                /** @default {} */
                rules: {
                    [key: string]: {
                        /** @default 0 */
                        cooldown_seconds: number;
                        daily_cap?: number;
                        delta: number;
                        /** @default true */
                        enabled: boolean;
                        /** @default false */
                        per_unit: boolean;
                        single_cap?: number;
                    };
                };
                /**
                 * @default {
                 *       "max_affinity": 1000
                 *     }
                 */
                settings: {
                    decay?: {
                        after_idle_days: number;
                        /** @default 0 */
                        floor: number;
                        per_day: number;
                    };
                    global_daily_cap?: number;
                    /** @default 1000 */
                    max_affinity: number;
                    timezone?: string;
                };
            };
            /**
             * @default {
             *       "low_balance": [],
             *       "expiring_soon": [],
             *       "overdrawn": []
             *     }
             */
            alerts: {
                /** @default [] */
                expiring_soon: {
                    asset: string;
                    /** @default 1 */
                    min_amount: number;
                    within_days: number;
                }[];
                /** @default [] */
                low_balance: {
                    asset: string;
                    below: number;
                }[];
                /** @default [] */
                overdrawn: {
                    asset: string;
                }[];
            };
            /** @default {} */
            assets: {
                [key: string]: {
                    /** @default null */
                    default_expiry_days: number | null;
                };
            };
            /** @default {} */
            pricing: {
                [key: string]: {
                    [key: string]: {
                        min_points?: number;
                        /** @constant */
                        mode: "fixed";
                        points: number;
                    } | {
                        divisor?: number;
                        estimate?: {
                            seconds_per_char?: number;
                            use_input_seconds?: boolean;
                        };
                        min_points?: number;
                        /** @constant */
                        mode: "duration";
                        multiplier?: number;
                    } | {
                        min_points?: number;
                        /** @constant */
                        mode: "tokens";
                        models: {
                            [key: string]: {
                                input_per_1k: number;
                                output_per_1k: number;
                            };
                        };
                    } | {
                        /** @constant */
                        mode: "free";
                    };
                };
            };
            /** @default {} */
            products: {
                [key: string]: {
                    /** @default true */
                    active: boolean;
                    amount: number;
                    asset: string;
                    original_price_cents?: number;
                    price_cents: number;
                };
            };
            /** @default {} */
            rewards: {
                [key: string]: {
                    amount: number;
                    asset: string;
                    daily_cap?: number;
                    versions: string[];
                };
            };
            /** @default Asia/Shanghai */
            timezone: string;
            /** @default [] */
            webhooks: {
                /** @default false */
                allow_private_network: boolean;
                events: ("alert" | "level_up" | "level_down" | "balance_changed" | "affinity_update")[];
                id: string;
                secret: string;
                url: string;
            }[];
        };
        DeviceStatus: {
            active: boolean;
            level: number;
            value: number;
        };
        /** @description Every error tally answers: 4xx and 5xx alike. */
        Error: {
            error: {
                code: string;
                details?: unknown;
                message: string;
            };
        };
        EventsAccepted: {
            accepted: string[];
            rejected: {
                code: string;
                event_id?: string;
                index: number;
                message: string;
            }[];
        };
        EventsApplied: {
            results: (({
                outcome: string;
            } & {
                [key: string]: unknown;
            }) | {
                failed: string;
                reason: string;
            })[];
        };
        EventsRequest: {
            events: (components["schemas"]["GrantsJob"] | components["schemas"]["ChargesJob"] | components["schemas"]["AffinityEventsJob"])[];
        };
        /** @description A job on the `grants` queue (name = type, jobId = event_id). */
        GrantPayload: {
            amount: number;
            asset: string;
            description?: string;
            event_id: string;
            expires_at?: string | null;
            source: string;
            source_id?: string;
            /** @constant */
            type: "grant";
            user_id: string;
        };
        /** @description A batch job on the `grants` queue (name = batch, any unique jobId): 1–1000 of its payloads, each applied exactly as its own job would be (exactly once by its event_id, in order per user, a bad one failing alone). Its result is BatchJobResult. The worker checks the envelope (this shape, member types of this queue) for the whole job and each member alone. */
        GrantsBatchJob: {
            events: components["schemas"]["GrantsJob"][];
            /** @constant */
            type: "batch";
        };
        /** @description Any payload of the `grants` queue. */
        GrantsJob: components["schemas"]["GrantPayload"] | components["schemas"]["RewardEventPayload"];
        Hold: {
            amount: number;
            asset: string;
            created_at: string;
            event_id: string;
            expires_at: string;
            hold_id: string;
            settle_event_id: string | null;
            settled_amount: number | null;
            source_type: string;
            /** @enum {string} */
            status: "active" | "settled" | "released" | "expired";
            user_id: string;
        };
        LedgerAdjustRequest: {
            amount: number;
            asset: string;
            event_id: string;
            operator_id: string;
            reason: string;
            user_id: string;
        };
        LedgerAdjustResult: {
            amount: number;
            balance_after: number;
            balance_before: number;
            event_id: string;
            original_outcome?: string;
            /** @enum {string} */
            outcome: "applied" | "noop_duplicate";
            transaction_id: string;
        };
        Order: {
            amount: number;
            asset: string;
            created_at: string;
            order_id: string;
            paid_at: string | null;
            price_cents: number;
            provider_ref: string | null;
            sku: string;
            /** @enum {string} */
            status: "pending" | "paid";
            user_id: string;
        };
        PricingRule: {
            min_points?: number;
            /** @constant */
            mode: "fixed";
            points: number;
        } | {
            divisor?: number;
            estimate?: {
                seconds_per_char?: number;
                use_input_seconds?: boolean;
            };
            min_points?: number;
            /** @constant */
            mode: "duration";
            multiplier?: number;
        } | {
            min_points?: number;
            /** @constant */
            mode: "tokens";
            models: {
                [key: string]: {
                    input_per_1k: number;
                    output_per_1k: number;
                };
            };
        } | {
            /** @constant */
            mode: "free";
        };
        Product: {
            amount: number;
            asset: string;
            original_price_cents: number | null;
            price_cents: number;
            sku: string;
        };
        /** @description A job on the `charges` queue (name = type, jobId = event_id). */
        RefundPayload: {
            amount?: number;
            charge_event_id: string;
            event_id: string;
            reason?: string;
            /** @constant */
            type: "refund";
        };
        /** @description A job on the `grants` queue (name = type, jobId = event_id). */
        RewardEventPayload: {
            event_id: string;
            event_type: string;
            event_version?: string;
            /** Format: date-time */
            occurred_at?: string;
            receiver_user_id: string;
            source_ref_id: string;
            /** @constant */
            type: "reward.event";
        };
        Transaction: {
            amount: number;
            asset: string;
            balance_after: number;
            balance_before: number;
            batches: {
                amount: number;
                batch_id: string;
            }[];
            created_at: string;
            description: string | null;
            event_id: string | null;
            kind: string;
            occurred_at: string | null;
            source_id: string | null;
            source_type: string | null;
            transaction_id: string;
            usage: unknown;
        };
        /** @description Measured or estimated usage, priced by the asset's pricing rule for the source_type. */
        Usage: {
            char_count?: number;
            input_seconds?: number;
            input_tokens?: number;
            model?: string;
            output_tokens?: number;
            seconds?: number;
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export type operations = Record<string, never>;
