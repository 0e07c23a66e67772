import { defineConfig } from 'vitest/config';

// The suites `npm run mutate` (Stryker, stryker.config.mjs) runs against each mutant: everything that runs
// the core in this process. Left out: the browser tests (the renderer is not mutated), the relay fuzzer,
// the fault campaign and the PostgreSQL project (they would multiply the run time, and cover code
// running in other processes, which Stryker cannot see).
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    include: ['test/**/*.test.ts'],
    exclude: ['test/relay/fuzz.test.ts', 'test/faults.test.ts', 'test/relay/pg/**', 'test/cli-build.test.ts', 'test/packaging.test.ts'],
  },
});
