import { defineConfig } from 'vitest/config';
import { AREAS } from './mutation/areas.mjs';

// The suites `npm run mutate` (Stryker, stryker.config.mjs) runs against each mutant: everything that runs
// the core in this process. Left out: the browser tests (the renderer is not mutated), the relay fuzzer,
// the fault campaign and the PostgreSQL project (they would multiply the run time, and cover code
// running in other processes, which Stryker cannot see). When the areas being run (MUTATION_AREA, set by
// scripts/mutate.ts) all name their own suites (mutation/areas.mjs, `tests`), only those run.
const ALL = ['test/**/*.test.ts'];
const areas = process.env.MUTATION_AREA?.split(',').map((name) => AREAS[name]);
const own = areas?.every((area) => area?.tests) ? [...new Set(areas.flatMap((area) => area!.tests!))] : null;

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    include: own ?? ALL,
    exclude: ['test/relay/fuzz.test.ts', 'test/faults.test.ts', 'test/relay/pg/**', 'test/cli-build.test.ts', 'test/packaging.test.ts'],
  },
});
