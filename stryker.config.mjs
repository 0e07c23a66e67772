// Mutation testing of the core (issue 15): `npm run mutate -- AREA` (scripts/mutate.ts), never part of
// `npm test`. The areas and what they cover: mutation/areas.mjs. With MUTATION_AREA set (the script sets it),
// this config mutates that area's files only (or those areas'), incrementally against the last full report
// of the same run (kept in test-output/mutation/<area>/ or <area+area>/, about 1 MB each, not committed), and reports there; scripts/mutate.ts then
// keeps the area's figures and survivors in mutation/<area>.json (committed). Without MUTATION_AREA it
// mutates the whole core in one run (many hours on 2 cores).
// Static mutants (code run once, at import: constants, schema definitions, SQL text) are left out: each one
// costs a run of every suite; they are reported as ignored, outside the score.
import { AREAS, CORE } from './mutation/areas.mjs';

// MUTATION_AREA may name several areas, comma-separated: they share one initial test run (6-10 minutes).
const areas = process.env.MUTATION_AREA?.split(',');
for (const name of areas ?? []) if (!(name in AREAS)) throw new Error(`no mutation area "${name}": see mutation/areas.mjs`);
const area = areas?.join('+');
const out = `test-output/mutation/${area ?? 'core'}`;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts', related: false },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: areas ? areas.flatMap((name) => AREAS[name].files) : CORE,
  ignoreStatic: true,
  incremental: area !== undefined,
  ...(area ? { incrementalFile: `${out}/incremental.json` } : {}),
  coverageAnalysis: 'perTest',
  concurrency: Number(process.env.MUTATION_CONCURRENCY ?? 2),
  // Added to 1.5 times the covering tests' own time: enough for a loaded machine, short enough that a mutant looping forever costs little.
  timeoutMS: 10_000,
  // The initial run of every suite, with per-test coverage, takes 6-10 minutes here.
  dryRunTimeoutMinutes: 30,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `${out}/index.html` },
  jsonReporter: { fileName: `${out}/report.json` },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
