import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each file makes its own database and queue prefix, so files run in parallel; two at a time suits 2 cores.
    maxWorkers: 2,
    fileParallelism: true,
    reporters: ['default'],
  },
});
