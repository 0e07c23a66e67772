// The arithmetic behind `npm run mutate -- --score` (scripts/mutation-score.ts), on a hand-made report in
// Stryker's format: what counts toward the score, what is left out, when a kept summary is stale.
import { describe, expect, it } from 'vitest';
import { coreFilesOutsideAreas, formatTally, parseSurvivor, score, sortSurvivors, summarize, sumTallies, survivorsOf, tallyOf, type Explanation, type MutationReport, type ReportMutant } from '../scripts/mutation-score.ts';

const at = (line: number, column = 1) => ({ start: { line, column } });
const mutant = (status: ReportMutant['status'], line: number, replacement = 'x'): ReportMutant => ({ mutatorName: 'EqualityOperator', replacement, status, location: at(line) });

const REPORT: MutationReport = {
  files: {
    'shared/b.ts': { source: 'b', mutants: [mutant('Survived', 9, '>='), mutant('Killed', 1), mutant('NoCoverage', 3, 'true')] },
    'shared/a.ts': { source: 'a', mutants: [mutant('Killed', 2), mutant('Timeout', 4), mutant('Ignored', 5), mutant('CompileError', 6), mutant('Killed', 7)] },
  },
};
const hash = (text: string): string => `h(${text})`;
const noSource = (file: string): string => {
  throw new Error(`${file} is in the report: its source comes from there`);
};
const SUMMARY = summarize('area', REPORT, ['shared/a.ts', 'shared/b.ts'], hash, '2026-11-30T00:00:00.000Z', noSource);
const UNCHANGED = new Map([['shared/a.ts', hash('a')], ['shared/b.ts', hash('b')]]);

describe('mutation score', () => {
  it('keeps counts, file hashes and survivors: killed and timed-out mutants caught, survivors and uncovered ones against, static and errors outside', () => {
    expect(SUMMARY).toEqual({
      area: 'area',
      ranAt: '2026-11-30T00:00:00.000Z',
      files: { 'shared/a.ts': 'h(a)', 'shared/b.ts': 'h(b)' },
      killed: 3,
      timeout: 1,
      survived: 1,
      noCoverage: 1,
      ignored: 1,
      errors: 1,
      survivors: ['shared/b.ts:3:1  not covered  EqualityOperator  true', 'shared/b.ts:9:1  survived  EqualityOperator  >='],
    });
    const tally = tallyOf(SUMMARY, UNCHANGED);
    expect(tally.stale).toEqual([]);
    expect(score(tally)).toBeCloseTo(4 / 6, 10);
    expect(formatTally(tally)).toContain('66.7 %');
    expect(score({ killed: 0, timeout: 0, survived: 0, noCoverage: 0, ignored: 3, errors: 0 })).toBeNull();
  });

  it('calls a summary stale when a file changed, is no longer in the area, or is new to it', () => {
    const tally = tallyOf(SUMMARY, new Map([['shared/a.ts', hash('a changed')], ['shared/c.ts', hash('new')]]));
    expect(tally.stale).toEqual(['shared/a.ts', 'shared/b.ts', 'shared/c.ts']);
    expect(formatTally(tally)).toContain('stale, re-run: shared/a.ts, shared/b.ts, shared/c.ts');
  });

  it('takes only its own files from a run that mutated several areas together', () => {
    const b = summarize('b', REPORT, ['shared/b.ts'], hash, '2026-11-30T00:00:00.000Z', noSource);
    expect(b.files).toEqual({ 'shared/b.ts': 'h(b)' });
    expect([b.killed, b.timeout, b.survived, b.noCoverage, b.ignored, b.errors]).toEqual([1, 0, 1, 1, 0, 0]);
    expect(b.survivors).toEqual(['shared/b.ts:3:1  not covered  EqualityOperator  true', 'shared/b.ts:9:1  survived  EqualityOperator  >=']);
    const a = summarize('a', REPORT, ['shared/a.ts'], hash, '2026-11-30T00:00:00.000Z', noSource);
    expect([a.killed, a.timeout, a.survived, a.noCoverage, a.ignored, a.errors]).toEqual([2, 1, 0, 0, 1, 1]);
    expect(a.survivors).toEqual([]);
  });

  it('records a file of the area that has no mutants (constants only) by its source, so it is not stale', () => {
    const withConstants = summarize('area', REPORT, ['shared/a.ts', 'shared/b.ts', 'shared/limits.ts'], hash, '2026-11-30T00:00:00.000Z', (file) => `text of ${file}`);
    expect(withConstants.files).toEqual({ 'shared/a.ts': 'h(a)', 'shared/b.ts': 'h(b)', 'shared/limits.ts': 'h(text of shared/limits.ts)' });
    expect(withConstants.killed).toBe(SUMMARY.killed);
    expect(tallyOf(withConstants, new Map([...UNCHANGED, ['shared/limits.ts', hash('text of shared/limits.ts')]])).stale).toEqual([]);
    expect(tallyOf(withConstants, new Map([...UNCHANGED, ['shared/limits.ts', hash('changed')]])).stale).toEqual(['shared/limits.ts']);
  });

  it('adds areas up', () => {
    const one = tallyOf(SUMMARY, UNCHANGED);
    const sum = sumTallies([one, one]);
    expect([sum.killed, sum.timeout, sum.survived, sum.noCoverage, sum.ignored, sum.errors]).toEqual([6, 2, 2, 2, 2, 2]);
    expect(score(sum)).toBeCloseTo(4 / 6, 10);
  });

  it('finds core files that no area or two areas list', () => {
    expect(coreFilesOutsideAreas(['a', 'b', 'c'], [['a'], ['b', 'a']])).toEqual({ missing: ['c'], twice: ['a'] });
    expect(coreFilesOutsideAreas(['a'], [['a']])).toEqual({ missing: [], twice: [] });
  });

  it('cuts a big file into areas by lines: each area counts the mutants of its lines, and the cuts must cover the file once', () => {
    const first = summarize('first', REPORT, ['shared/a.ts:1-4'], hash, '2026-11-30T00:00:00.000Z', noSource);
    const rest = summarize('rest', REPORT, ['shared/a.ts:5-99', 'shared/b.ts'], hash, '2026-11-30T00:00:00.000Z', noSource);
    expect(first.files).toEqual({ 'shared/a.ts': 'h(a)' }); // the whole file's hash: any change makes both stale
    expect([first.killed, first.timeout, first.ignored, first.errors]).toEqual([1, 1, 0, 0]);
    expect([rest.killed, rest.timeout, rest.survived, rest.noCoverage, rest.ignored, rest.errors]).toEqual([2, 0, 1, 1, 1, 1]);
    expect(sumTallies([tallyOf(first, new Map([['shared/a.ts', hash('a')]])), tallyOf(rest, UNCHANGED)])).toMatchObject({ killed: 3, timeout: 1, survived: 1, noCoverage: 1, ignored: 1, errors: 1, stale: [] });
    const lines = (): number => 120;
    expect(coreFilesOutsideAreas(['e'], [['e:1-60'], ['e:61-99999']], lines)).toEqual({ missing: [], twice: [] });
    expect(coreFilesOutsideAreas(['e'], [['e:1-60'], ['e:60-99999']], lines)).toEqual({ missing: [], twice: ['e'] });
    expect(coreFilesOutsideAreas(['e'], [['e:1-60'], ['e:62-99999']], lines)).toEqual({ missing: ['e'], twice: [] });
    expect(coreFilesOutsideAreas(['e'], [['e:2-60'], ['e:61-120']], lines)).toEqual({ missing: ['e'], twice: [] });
    expect(coreFilesOutsideAreas(['e'], [['e:1-60'], ['e:61-119']], lines)).toEqual({ missing: ['e'], twice: [] });
    expect(coreFilesOutsideAreas(['e'], [['e'], ['e:61-120']], lines)).toEqual({ missing: [], twice: ['e'] });
  });
});

describe('explained survivors', () => {
  const SOURCE: Record<string, string[]> = {
    'shared/a.ts': ['const a = 1;', "  if (error) log.warn({ err }, 'it failed');", '  return x >= 0;'],
    'shared/b.ts': ["  if (error) log.warn({ err }, 'it failed');"],
  };
  const lineOf = (file: string, line: number): string => SOURCE[file]?.[line - 1] ?? '';
  const alive = survivorsOf({
    files: {
      'shared/a.ts': { source: '', mutants: [{ mutatorName: 'StringLiteral', replacement: '""', status: 'Survived', location: at(2, 40) }, { mutatorName: 'EqualityOperator', replacement: 'x > 0', status: 'NoCoverage', location: at(3, 10) }] },
      'shared/b.ts': { source: '', mutants: [{ mutatorName: 'ObjectLiteral', replacement: '{}', status: 'Survived', location: at(1, 25) }] },
    },
  });

  it('reads back each survivor line a summary keeps', () => {
    expect(alive.map(parseSurvivor)).toEqual([
      { file: 'shared/a.ts', line: 2, column: 40, status: 'survived', mutator: 'StringLiteral', replacement: '""' },
      { file: 'shared/a.ts', line: 3, column: 10, status: 'not covered', mutator: 'EqualityOperator', replacement: 'x > 0' },
      { file: 'shared/b.ts', line: 1, column: 25, status: 'survived', mutator: 'ObjectLiteral', replacement: '{}' },
    ]);
    expect(() => parseSurvivor('shared/a.ts:2  survived')).toThrow(/not a survivor line/);
  });

  it('explains a survivor by its file, a piece of its line and its mutator; names explanations that cover nothing', () => {
    const logWords: Explanation = { file: 'shared/a.ts', code: "'it failed'", mutators: ['StringLiteral'], why: 'words' };
    const otherFile: Explanation = { file: 'shared/c.ts', code: "'it failed'", why: 'elsewhere' };
    const otherMutator: Explanation = { file: 'shared/a.ts', code: 'x >= 0', mutators: ['ConditionalExpression'], why: 'not this mutator' };
    const sorted = sortSurvivors(alive, [logWords, otherFile, otherMutator], lineOf);
    expect(sorted.explained).toEqual([{ survivor: alive[0], by: logWords }]);
    // Same line text in another file, another mutator on the explained line's neighbour: not explained.
    expect(sorted.unexplained).toEqual([alive[1], alive[2]]);
    expect(sorted.unused).toEqual([otherFile, otherMutator]);
    // Without mutators an entry covers every mutant of the line.
    const anyMutator: Explanation = { file: 'shared/b.ts', code: 'log.warn', why: 'any' };
    expect(sortSurvivors(alive, [anyMutator], lineOf).explained).toEqual([{ survivor: alive[2], by: anyMutator }]);
    // With replacements, only the mutants that replace with one of those.
    const otherReplacement: Explanation = { file: 'shared/b.ts', code: 'log.warn', replacements: ['{ err: 1 }'], why: 'not this one' };
    const thisReplacement: Explanation = { file: 'shared/b.ts', code: 'log.warn', mutators: ['ObjectLiteral'], replacements: ['{}'], why: 'this one' };
    expect(sortSurvivors(alive, [otherReplacement, thisReplacement], lineOf)).toMatchObject({ explained: [{ survivor: alive[2], by: thisReplacement }], unused: [otherReplacement] });
  });

  it('with `follows`, only where the line comes right after one holding that text, blank lines skipped', () => {
    const source: Record<string, string[]> = { 'shared/c.ts': ['  this.nextCycleAt = null;', '', '  this.emitStatus();', '  other();', '  this.emitStatus();'] };
    const lines = (file: string, line: number): string => source[file]?.[line - 1] ?? '';
    const emits = survivorsOf({ files: { 'shared/c.ts': { source: '', mutants: [at(3, 3), at(5, 3)].map((location) => ({ mutatorName: 'CallExpression', replacement: ';', status: 'Survived', location })) } } });
    const afterNull: Explanation = { file: 'shared/c.ts', code: 'this.emitStatus();', follows: 'this.nextCycleAt = null;', why: 'redundant there' };
    expect(sortSurvivors(emits, [afterNull], lines)).toMatchObject({ explained: [{ survivor: emits[0], by: afterNull }], unexplained: [emits[1]] });
    // At the top of a file nothing comes before.
    const top = survivorsOf({ files: { 'shared/c.ts': { source: '', mutants: [{ mutatorName: 'CallExpression', replacement: ';', status: 'Survived', location: at(1, 3) }] } } });
    expect(sortSurvivors(top, [{ ...afterNull, code: 'this.nextCycleAt' }], lines).unexplained).toEqual(top);
  });
});
