import { defineConfig } from 'vitest/config';

// Real SQLite files, real processes: give slow disks room, but never hide a hang.
const common = { testTimeout: 60_000, hookTimeout: 60_000 };
// The relay fuzzer and the fault campaign start many processes and sockets at once; on a 2-core machine
// they would starve the timing-sensitive suites next to them, so they run after them, one at a time.
const HEAVY = ['test/relay/fuzz.test.ts', 'test/faults.test.ts'];

export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      { test: { ...common, name: 'main', include: ['test/**/*.test.ts', 'e2e/**/*.test.ts'], exclude: HEAVY, sequence: { groupOrder: 0 } } },
      { test: { ...common, name: 'fuzz', include: ['test/relay/fuzz.test.ts'], sequence: { groupOrder: 1 } } },
      { test: { ...common, name: 'faults', include: ['test/faults.test.ts'], sequence: { groupOrder: 2 } } },
    ],
  },
});
