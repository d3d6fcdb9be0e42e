import { defineConfig } from 'vitest/config';

/**
 * The pure domain tests only: src/domain/** exercised in memory, no database, no Redis, no child processes.
 * `npm run mutation` runs Stryker with this config; it must never pick up an integration test (they need services
 * and take minutes, and would make every mutant cost seconds). Run it by hand: `npx vitest run -c vitest.domain.config.ts`.
 */
export default defineConfig({
  test: {
    include: ['test/domain-*.test.ts', 'test/*-domain.test.ts'],
    testTimeout: 10_000,
    reporters: ['default'],
  },
});
