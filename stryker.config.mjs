// Mutation testing of the core (issue 15): `npm run mutate`. Not part of `npm test` (it runs the suites
// once per mutant: hours on 2 cores). Narrow it with --mutate, e.g.
//   npm run mutate -- --mutate shared/clock.ts
// The report: test-output/mutation/index.html (and report.json).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts', related: false },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: ['shared/**/*.ts', '!shared/portable/ipc-contract.ts', 'main/store/**/*.ts', 'main/sync/**/*.ts', 'relay/auth.ts'],
  coverageAnalysis: 'perTest',
  concurrency: 2,
  timeoutMS: 30_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'test-output/mutation/index.html' },
  jsonReporter: { fileName: 'test-output/mutation/report.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
