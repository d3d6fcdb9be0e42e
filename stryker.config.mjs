// @ts-check
/**
 * Mutation testing of the pure domain (docs/testing.md, "Mutation testing"): `npm run mutation`.
 * Only src/domain/** is mutated and only the domain tests run (vitest.domain.config.ts), so a run takes minutes,
 * not hours. Incremental: results are kept in reports/stryker-incremental.json and unchanged mutants are not re-run.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
const config = {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.domain.config.ts', related: false },
  mutate: ['src/domain/**/*.ts'],
  // Stryker copies the project into a sandbox; the domain tests need only these.
  ignorePatterns: ['/*', '!/src', '!/test', '!/package.json', '!/tsconfig.json', '!/vitest.domain.config.ts'],
  coverageAnalysis: 'perTest',
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 95, low: 90, break: 90 },
  concurrency: 2,
  tempDirName: '.stryker-tmp',
};
export default config;
