import { defineConfig } from 'vitest/config';

// Real SQLite files, real processes: give slow disks room, but never hide a hang.
const common = { testTimeout: 60_000, hookTimeout: 60_000 };
// The relay fuzzer and the fault campaign start many processes and sockets at once; on a 2-core machine
// they would starve the timing-sensitive suites next to them, so they run after them, one at a time.
const HEAVY = ['test/relay/fuzz.test.ts', 'test/faults.test.ts'];
// Every relay test runs again, unchanged, against a real PostgreSQL cluster the project starts (or is
// reported skipped where no PostgreSQL binaries exist); test/relay/pg/ holds what only PostgreSQL has.
const postgres = {
  env: { MOTEBIT_TEST_STORE: 'postgres' },
  globalSetup: ['./test/support/postgres-global.ts'],
  setupFiles: ['./test/support/postgres-skip.ts'],
};

export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      { test: { ...common, name: 'main', include: ['test/**/*.test.ts', 'e2e/**/*.test.ts'], exclude: [...HEAVY, 'test/relay/pg/**'], sequence: { groupOrder: 0 } } },
      { test: { ...common, ...postgres, name: 'postgres', include: ['test/relay/*.test.ts', 'test/relay/pg/*.test.ts'], exclude: HEAVY, sequence: { groupOrder: 1 } } },
      { test: { ...common, name: 'fuzz', include: ['test/relay/fuzz.test.ts'], sequence: { groupOrder: 2 } } },
      { test: { ...common, ...postgres, name: 'fuzz-postgres', include: ['test/relay/fuzz.test.ts'], sequence: { groupOrder: 3 } } },
      { test: { ...common, name: 'faults', include: ['test/faults.test.ts'], sequence: { groupOrder: 4 } } },
    ],
  },
});
