// The arithmetic of `npm run mutate` (scripts/mutate.ts): an area's summary from its Stryker report (the
// mutation-testing-report-schema JSON), which is what mutation/<area>.json keeps; the score of a summary,
// stale when its files changed since; the sum over areas; which files of the core no area covers. No I/O.

type Status = 'Killed' | 'Survived' | 'NoCoverage' | 'Timeout' | 'CompileError' | 'RuntimeError' | 'Ignored' | 'Pending';

export interface ReportMutant {
  mutatorName: string;
  replacement?: string;
  status: Status;
  location: { start: { line: number; column: number } };
}

export interface MutationReport {
  files: Record<string, { source: string; mutants: ReportMutant[] }>;
}

export interface Counts {
  killed: number;
  timeout: number;
  survived: number;
  noCoverage: number;
  /** Static mutants, left out of the score (stryker.config.mjs says why). */
  ignored: number;
  /** Mutants that did not compile or broke the runner: not counted either way. */
  errors: number;
}

/** What mutation/<area>.json keeps of a run: small enough to commit, enough to tell when it is stale. */
export interface AreaSummary extends Counts {
  area: string;
  ranAt: string;
  /** Each mutated file's sha-256 when it ran. */
  files: Record<string, string>;
  /** The mutants no test caught, as survivorsOf writes them. */
  survivors: string[];
}

export interface Tally extends Counts {
  /** Files whose contents are no longer those of the run (or that the run did not mutate): re-run the area. */
  stale: string[];
}

const ZERO: Counts = { killed: 0, timeout: 0, survived: 0, noCoverage: 0, ignored: 0, errors: 0 };

function countOf(report: MutationReport): Counts {
  const counts = { ...ZERO };
  for (const { mutants } of Object.values(report.files)) {
    for (const mutant of mutants) {
      switch (mutant.status) {
        case 'Killed':
          counts.killed++;
          break;
        case 'Timeout':
          counts.timeout++;
          break;
        case 'Survived':
          counts.survived++;
          break;
        case 'NoCoverage':
          counts.noCoverage++;
          break;
        case 'Ignored':
          counts.ignored++;
          break;
        default:
          counts.errors++;
      }
    }
  }
  return counts;
}

/**
 * An area's entry, once globbed: a file, or some of its lines as `path:FROM-TO` (Stryker's own syntax for
 * `mutate`), so that a file too big for one sitting is cut into areas that each fit in one.
 */
export interface Target {
  readonly file: string;
  /** First and last line, inclusive; null for the whole file. */
  readonly lines: readonly [number, number] | null;
}

export function parseTarget(entry: string): Target {
  const match = /^(.+):(\d+)-(\d+)$/.exec(entry);
  return match ? { file: match[1]!, lines: [Number(match[2]), Number(match[3])] } : { file: entry, lines: null };
}

/** Each file the targets name, with the lines each target takes of it (null: the whole file). */
function linesByFile(targetLists: readonly (readonly string[])[]): Map<string, Target['lines'][]> {
  const byFile = new Map<string, Target['lines'][]>();
  for (const targets of targetLists) for (const { file, lines } of targets.map(parseTarget)) byFile.set(file, [...(byFile.get(file) ?? []), lines]);
  return byFile;
}

/**
 * An area's summary from a report of a run that mutated `targets` (files, or lines of them: parseTarget)
 * and possibly other areas' too (several areas run together share one initial test run): only the area's
 * mutants count. A file of the area the report does not list (it has no mutants: constants only) is
 * recorded by its source as `sourceOf` reads it, so it does not make the summary stale. A summary keeps
 * the hash of each whole file: any change to it makes every area with lines of it stale.
 */
export function summarize(area: string, report: MutationReport, targets: readonly string[], hashOf: (text: string) => string, ranAt: string, sourceOf: (file: string) => string): AreaSummary {
  const ranges = linesByFile([targets]);
  const mine = (file: string, mutant: ReportMutant): boolean =>
    ranges.get(file)!.some((lines) => lines === null || (mutant.location.start.line >= lines[0] && mutant.location.start.line <= lines[1]));
  const own: MutationReport = {
    files: Object.fromEntries(
      Object.entries(report.files)
        .filter(([file]) => ranges.has(file))
        .map(([file, { source, mutants }]) => [file, { source, mutants: mutants.filter((mutant) => mine(file, mutant)) }]),
    ),
  };
  const files = Object.fromEntries([...ranges.keys()].sort().map((file) => [file, hashOf(own.files[file]?.source ?? sourceOf(file))]));
  return { area, ranAt, files, ...countOf(own), survivors: survivorsOf(own) };
}

/** The summary's counts, with the files that changed since it ran (`current`: each file of the area, its sha-256). */
export function tallyOf(summary: AreaSummary, current: ReadonlyMap<string, string>): Tally {
  const stale = new Set<string>();
  for (const [file, hash] of Object.entries(summary.files)) if (current.get(file) !== hash) stale.add(file);
  for (const file of current.keys()) if (!(file in summary.files)) stale.add(file);
  const { killed, timeout, survived, noCoverage, ignored, errors } = summary;
  return { killed, timeout, survived, noCoverage, ignored, errors, stale: [...stale].sort() };
}

export function sumTallies(tallies: readonly Tally[]): Tally {
  const sum: Tally = { ...ZERO, stale: [] };
  for (const t of tallies) {
    sum.killed += t.killed;
    sum.timeout += t.timeout;
    sum.survived += t.survived;
    sum.noCoverage += t.noCoverage;
    sum.ignored += t.ignored;
    sum.errors += t.errors;
    sum.stale.push(...t.stale);
  }
  return sum;
}

/** Stryker's mutation score: caught over caught + survived + uncovered, or null when nothing counted. */
export function score(counts: Counts): number | null {
  const caught = counts.killed + counts.timeout;
  const counted = caught + counts.survived + counts.noCoverage;
  return counted === 0 ? null : caught / counted;
}

export function formatTally(tally: Tally): string {
  const s = score(tally);
  const figure = s === null ? 'no score' : `${(s * 100).toFixed(1)} %`;
  const stale = tally.stale.length > 0 ? `; stale, re-run: ${tally.stale.join(', ')}` : '';
  return `${figure.padStart(8)}  ${tally.killed} killed, ${tally.timeout} timed out, ${tally.survived} survived, ${tally.noCoverage} not covered (${tally.ignored} static ignored, ${tally.errors} errors)${stale}`;
}

/** Each surviving or uncovered mutant as `file:line:column  status  mutator  replacement`, in file order. */
export function survivorsOf(report: MutationReport): string[] {
  const lines: string[] = [];
  for (const file of Object.keys(report.files).sort()) {
    const alive = report.files[file]!.mutants.filter((m) => m.status === 'Survived' || m.status === 'NoCoverage');
    alive.sort((a, b) => a.location.start.line - b.location.start.line || a.location.start.column - b.location.start.column);
    for (const m of alive) {
      const replacement = (m.replacement ?? '').replace(/\s+/g, ' ');
      lines.push(`${file}:${m.location.start.line}:${m.location.start.column}  ${m.status === 'NoCoverage' ? 'not covered' : 'survived'}  ${m.mutatorName}  ${replacement.length > 100 ? `${replacement.slice(0, 100)}…` : replacement}`);
    }
  }
  return lines;
}

/**
 * Files of the core that no area lists, or only some of whose lines areas list (`lineCount`: a file's
 * lines); and files that more than one area lists, whole or with lines in common. Each area is its
 * targets, once globbed (parseTarget).
 */
export function coreFilesOutsideAreas(core: readonly string[], areas: readonly (readonly string[])[], lineCount: (file: string) => number = () => 0): { missing: string[]; twice: string[] } {
  const listed = linesByFile(areas);
  const missing = core.filter((file) => !listed.has(file));
  const twice: string[] = [];
  for (const [file, all] of listed) {
    if (all.length === 1 && all[0] === null) continue;
    if (all.includes(null)) {
      twice.push(file);
      continue;
    }
    const sorted = (all as (readonly [number, number])[]).toSorted((x, y) => x[0] - y[0]);
    let next = 1;
    for (const [from, to] of sorted) {
      if (from < next && !twice.includes(file)) twice.push(file);
      if (from > next && !missing.includes(file)) missing.push(file);
      next = Math.max(next, to + 1);
    }
    if (next <= lineCount(file) && !missing.includes(file)) missing.push(file);
  }
  return { missing: missing.sort(), twice: twice.sort() };
}

/** A surviving or uncovered mutant, read back from its line in a summary (survivorsOf). */
export interface Survivor {
  file: string;
  line: number;
  column: number;
  status: 'survived' | 'not covered';
  mutator: string;
  replacement: string;
}

export function parseSurvivor(text: string): Survivor {
  const match = /^(.+):(\d+):(\d+) {2}(survived|not covered) {2}(\S+) {2}(.*)$/.exec(text);
  if (!match) throw new Error(`not a survivor line: ${text}`);
  return { file: match[1]!, line: Number(match[2]), column: Number(match[3]), status: match[4] as Survivor['status'], mutator: match[5]!, replacement: match[6]! };
}

/**
 * Why a mutant that no test catches is left alive (mutation/explained.mjs): it is equivalent (no behaviour
 * tells it apart), or it changes only what no one can observe. It covers the mutants of `file` whose source
 * line contains `code` and, when `mutators` is given, whose mutator is one of those (and `replacements`, the same).
 */
export interface Explanation {
  readonly file: string;
  readonly code: string;
  readonly mutators?: readonly string[];
  /** Only mutants whose replacement is one of these (as --survivors prints it), where a line holds several of one mutator. */
  readonly replacements?: readonly string[];
  /** Only mutants whose line follows one containing this (blank lines skipped), where the line itself is common (`this.emitStatus();`). */
  readonly follows?: string;
  readonly why: string;
}

/** The explanation that covers `survivor`, if any; `lineOf` reads a line of its file as it is now. */
export function explanationOf(survivor: Survivor, lineOf: (line: number) => string, explained: readonly Explanation[]): Explanation | undefined {
  const sourceLine = lineOf(survivor.line);
  return explained.find(
    (e) =>
      e.file === survivor.file &&
      sourceLine.includes(e.code) &&
      (e.mutators === undefined || e.mutators.includes(survivor.mutator)) &&
      (e.replacements === undefined || e.replacements.includes(survivor.replacement)) &&
      (e.follows === undefined || lineBefore(lineOf, survivor.line).includes(e.follows)),
  );
}

/** The nearest line above `line` that is not blank ('' at the top). */
function lineBefore(lineOf: (line: number) => string, line: number): string {
  for (let n = line - 1; n >= 1; n--) {
    const text = lineOf(n);
    if (text.trim() !== '') return text;
  }
  return '';
}

/**
 * Survivors split into explained and not, and the explanations that cover no survivor (the code changed or
 * a test now kills them: remove them). `sourceLineOf` reads a line of a file as it is now.
 */
export function sortSurvivors(survivors: readonly string[], explained: readonly Explanation[], sourceLineOf: (file: string, line: number) => string): { explained: { survivor: string; by: Explanation }[]; unexplained: string[]; unused: Explanation[] } {
  const used = new Set<Explanation>();
  const result = { explained: [] as { survivor: string; by: Explanation }[], unexplained: [] as string[] };
  for (const text of survivors) {
    const survivor = parseSurvivor(text);
    const explanation = explanationOf(survivor, (line) => sourceLineOf(survivor.file, line), explained);
    if (explanation) {
      used.add(explanation);
      result.explained.push({ survivor: text, by: explanation });
    } else result.unexplained.push(text);
  }
  return { ...result, unused: explained.filter((e) => !used.has(e)) };
}
