// Mutation testing of the core, one area at a time (issue 15; the areas: mutation/areas.mjs).
//   npm run mutate -- AREA [AREA ...]   Stryker on these areas in one run (one initial test run), incrementally
//                                       against the last run of the same areas; then the core's score
//   npm run mutate -- --score           the core's score from the areas' kept results (mutation/<area>.json)
//   npm run mutate -- --survivors AREA  the mutants of an area that no test caught, file:line and change
//   npm run mutate -- --list            the areas
//   npm run mutate -- --keep AREA ...   summarise the last Stryker report of these areas again (after a run by hand)
// MUTATION_CONCURRENCY sets Stryker's test runners (default 2). A run keeps the area's figures and survivors
// in mutation/<area>.json (commit it: the score adds those up, and says which areas are stale because their
// files changed since). Stryker's own full report stays in test-output/mutation/<area>/, where the next
// run on this machine reuses it (incremental). The score is Stryker's: caught (killed or timed out) over
// caught, survived and uncovered; static mutants are ignored (stryker.config.mjs says why).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, globSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { AREAS, CORE } from '../mutation/areas.mjs';
import { EXPLAINED } from '../mutation/explained.mjs';
import { coreFilesOutsideAreas, formatTally, parseTarget, sortSurvivors, summarize, sumTallies, tallyOf, type AreaSummary, type Explanation, type MutationReport, type Tally } from './mutation-score.ts';
import { FIXED_SEED } from '../test/support/property.ts';

const summaryPath = (area: string): string => `mutation/${area}.json`;
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

function readSummary(area: string): AreaSummary | null {
  const path = summaryPath(area);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as AreaSummary) : null;
}

/** The folder of Stryker's report for a run of these areas (together). */
const runDir = (areas: readonly string[]): string => `test-output/mutation/${areas.join('+')}`;

/** After Stryker ran these areas together: each area's part of the report, summarised into mutation/<area>.json. */
function keepSummaries(areas: readonly string[]): void {
  const path = `${runDir(areas)}/report.json`;
  const report = JSON.parse(readFileSync(path, 'utf8')) as MutationReport;
  const ranAt = statSync(path).mtime.toISOString();
  for (const area of areas) writeFileSync(summaryPath(area), `${JSON.stringify(summarize(area, report, targetsOf(AREAS[area]!.files), sha256, ranAt, (file) => readFileSync(file, 'utf8')), null, 2)}\n`);
}

/** An area's entries once globbed: files, and lines of files as they are written (`path:FROM-TO`). */
function targetsOf(patterns: readonly string[]): string[] {
  const include = patterns.filter((p) => !p.startsWith('!'));
  const exclude = new Set(patterns.filter((p) => p.startsWith('!')).flatMap((p) => globSync(p.slice(1))));
  const targets = include.flatMap((p) => (parseTarget(p).lines ? [p] : globSync(p).filter((file) => !exclude.has(file))));
  return [...new Set(targets)].sort();
}

function filesOf(patterns: readonly string[]): string[] {
  return [...new Set(targetsOf(patterns).map((target) => parseTarget(target).file))].sort();
}

const lineCount = (file: string): number => readFileSync(file, 'utf8').split('\n').length;
const sourceLineOf = (file: string, line: number): string => (existsSync(file) ? (readFileSync(file, 'utf8').split('\n')[line - 1] ?? '') : '');
const sorted = (summary: AreaSummary) => sortSurvivors(summary.survivors, EXPLAINED, sourceLineOf);

function printScore(): number {
  const rows: string[] = [];
  const tallies: Tally[] = [];
  const notRun: string[] = [];
  let unexplainedCount = 0;
  let explainedCount = 0;
  const used = new Set<Explanation>();
  for (const [area, { files }] of Object.entries(AREAS)) {
    const summary = readSummary(area);
    if (!summary) {
      notRun.push(area);
      continue;
    }
    const current = new Map(filesOf(files).map((file) => [file, sha256(readFileSync(file, 'utf8'))]));
    const tally = tallyOf(summary, current);
    tallies.push(tally);
    const { explained, unexplained } = sorted(summary);
    unexplainedCount += unexplained.length;
    explainedCount += explained.length;
    for (const { by } of explained) used.add(by);
    rows.push(`${area.padEnd(12)} ${formatTally(tally)}${explained.length > 0 ? `; ${explained.length} of those alive explained` : ''}`);
  }
  console.log(rows.length > 0 ? rows.join('\n') : 'no area has been run yet');
  if (tallies.length > 0) console.log(`${'run so far'.padEnd(12)} ${formatTally(sumTallies(tallies))}`);
  if (tallies.length > 0) console.log(`alive        ${explainedCount} explained (mutation/explained.mjs), ${unexplainedCount} not yet: kill them with a test or explain them (npm run mutate -- --survivors AREA)`);
  // A stale area's survivors name lines of an older file: its explanations are judged once it runs again.
  const stale = new Set(tallies.flatMap((tally) => tally.stale));
  const unused = EXPLAINED.filter((e) => !used.has(e) && !stale.has(e.file));
  if (unused.length > 0) console.log(`explanations that cover no mutant now (remove them): ${unused.map((e) => `${e.file} "${e.code}"`).join('; ')}`);
  if (notRun.length > 0) console.log(`not run yet: ${notRun.join(', ')} (npm run mutate -- ${notRun[0]})`);
  const outside = coreFilesOutsideAreas(filesOf(CORE), Object.values(AREAS).map((a) => targetsOf(a.files)), lineCount);
  if (outside.missing.length > 0) console.log(`files of the core in no area, or only partly (add them to mutation/areas.mjs): ${outside.missing.join(', ')}`);
  if (outside.twice.length > 0) console.log(`files in more than one area, or lines of them: ${outside.twice.join(', ')}`);
  return outside.missing.length + outside.twice.length > 0 ? 1 : 0;
}

function main(args: string[]): number {
  if (args.length === 0 || args[0] === '--help') {
    console.log('usage: npm run mutate -- AREA [AREA ...] | --score | --survivors AREA | --keep AREA [AREA ...] | --list');
    return args.length === 0 ? 2 : 0;
  }
  if (args[0] === '--list') {
    for (const [area, { files, what }] of Object.entries(AREAS)) console.log(`${area.padEnd(12)} ${what} (${filesOf(files).length} files)`);
    return 0;
  }
  if (args[0] === '--score') return printScore();
  if (args[0] === '--keep') {
    const areas = args.slice(1);
    if (areas.length === 0 || areas.some((area) => !(area in AREAS)) || !existsSync(`${runDir(areas)}/report.json`)) {
      console.error(`no Stryker report for areas "${areas.join(' ')}" run together in test-output/mutation/: run npm run mutate -- ${areas.join(' ')}`);
      return 2;
    }
    keepSummaries(areas);
    return printScore();
  }
  if (args[0] === '--survivors') {
    const area = args[1] ?? '';
    const summary = area in AREAS ? readSummary(area) : null;
    if (!summary) {
      console.error(area in AREAS ? `area ${area} has no results yet: run npm run mutate -- ${area}` : `no area "${area}": npm run mutate -- --list`);
      return 2;
    }
    const { explained, unexplained } = sorted(summary);
    for (const line of unexplained) console.log(line);
    if (explained.length > 0) console.log(`\nexplained (mutation/explained.mjs):\n${explained.map((e) => `${e.survivor}\n    ${e.by.why}`).join('\n')}`);
    return 0;
  }
  const unknown = args.filter((area) => !(area in AREAS));
  if (unknown.length > 0) {
    console.error(`no area ${unknown.map((a) => `"${a}"`).join(', ')}: npm run mutate -- --list`);
    return 2;
  }
  console.log(`mutation ${args.length > 1 ? 'areas, in one run' : 'area'}:\n${args.map((area) => `  ${area}: ${AREAS[area]!.what}`).join('\n')}`);
  // Property suites run on their fixed seed only, with a tenth of their runs: a mutant's verdict must not
  // depend on a random seed, and at full count the convergence properties that reach the store made
  // event-store a three-hour run. PROPERTY_SEED, PROPERTY_RUNS or PROPERTY_RUNS_SCALE set override this.
  const properties = { PROPERTY_SEED: process.env.PROPERTY_SEED ?? String(FIXED_SEED), PROPERTY_RUNS_SCALE: process.env.PROPERTY_RUNS_SCALE ?? '0.1' };
  // Without a Secret Service: the suites keep their devices' secrets in the files they opt into (the core
  // mutated here never reads a keyring), so no mutant's verdict depends on the keyring, none touches the
  // caller's own, and the run does not slow down as it grows. A private gnome-keyring made the engine's
  // suites 62 % slower fresh (39.6 s against 24.5 s) and slower with every write of a long run: it rewrites
  // its whole file each time. The keyring's own tests are in npm test, not here.
  const env: NodeJS.ProcessEnv = { ...process.env, ...properties, MUTATION_AREA: args.join(',') };
  delete env.DBUS_SESSION_BUS_ADDRESS;
  const run = spawnSync('npx', ['stryker', 'run'], { stdio: 'inherit', env });
  if (run.status !== 0) {
    console.error(`Stryker failed on ${args.join(', ')} (exit ${run.status ?? run.signal}); earlier results, if any, are unchanged`);
    return 1;
  }
  keepSummaries(args);
  return printScore();
}

process.exitCode = main(process.argv.slice(2));
