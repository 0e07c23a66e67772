// The campaign's report on stdout: each failed run with its seed and replay command, a table by fault kind
// (a run with two kinds counts in both rows; the total row counts it once), and the final line
// "RUNS runs, L lost, D duplicated, N non-converged, H hangs, F false-successes".
import { replayCommand, type CampaignResult } from './campaign.ts';
import { KINDS } from './kinds.ts';
import type { Counters, RunResult } from './run.ts';

const COLUMNS = ['runs', 'lost', 'duplicated', 'non-converged', 'hangs', 'false-successes', 'seconds'] as const;

interface Row {
  runs: number;
  counters: Counters;
  seconds: number;
}

const zero = (): Counters => ({ lost: 0, duplicated: 0, nonConverged: 0, hangs: 0, falseSuccesses: 0 });

function add(row: Row, run: RunResult): void {
  row.runs++;
  row.seconds += run.seconds;
  for (const key of Object.keys(row.counters) as (keyof Counters)[]) row.counters[key] += run.counters[key];
}

export function totals(result: CampaignResult): Row {
  const row: Row = { runs: 0, counters: zero(), seconds: 0 };
  for (const run of result.runs) add(row, run);
  return row;
}

export function failed(run: RunResult): boolean {
  const c = run.counters;
  return c.lost + c.duplicated + c.nonConverged + c.hangs + c.falseSuccesses > 0 || run.error !== null;
}

export function finalLine(result: CampaignResult): string {
  const { runs, counters: c } = totals(result);
  return `${runs} runs, ${c.lost} lost, ${c.duplicated} duplicated, ${c.nonConverged} non-converged, ${c.hangs} hangs, ${c.falseSuccesses} false-successes`;
}

export function renderReport(result: CampaignResult, events: number): string {
  const lines: string[] = [];
  const failures = result.runs.filter(failed);
  if (failures.length > 0) {
    lines.push(`FAILED RUNS (${failures.length}):`);
    for (const run of failures) {
      const c = run.counters;
      lines.push(`  seed ${run.seed} ${run.kinds.join('+')}: lost ${c.lost}, duplicated ${c.duplicated}, non-converged ${c.nonConverged}, hangs ${c.hangs}, false-successes ${c.falseSuccesses}${run.error ? ', HARNESS ERROR' : ''}`);
      for (const failure of run.failures.slice(0, 4)) lines.push(`    ${failure}`);
      if (run.error) lines.push(`    ${run.error.split('\n')[0]}`);
      lines.push(`    replay: ${replayCommand(run, events)}`);
    }
    lines.push('');
  }
  const rows = new Map<string, Row>();
  for (const kind of KINDS) rows.set(kind, { runs: 0, counters: zero(), seconds: 0 });
  for (const run of result.runs) for (const kind of run.kinds) add(rows.get(kind)!, run);
  const table: string[][] = [['kind', ...COLUMNS]];
  const cells = (row: Row): string[] => [String(row.runs), String(row.counters.lost), String(row.counters.duplicated), String(row.counters.nonConverged), String(row.counters.hangs), String(row.counters.falseSuccesses), row.seconds.toFixed(0)];
  for (const [kind, row] of rows) {
    const skip = result.skipped.get(kind as never);
    if (row.runs === 0 && !skip) continue;
    table.push([kind, ...cells(row)]);
  }
  table.push(['TOTAL', ...cells(totals(result))]);
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  for (const [index, row] of table.entries()) {
    lines.push(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
    if (index === 0) lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  for (const [kind, reason] of result.skipped) lines.push(`SKIPPED ${kind}: ${reason} (not counted as passing)`);
  lines.push(finalLine(result));
  return lines.join('\n');
}

export function reportJson(result: CampaignResult, seed: number, events: number): object {
  const t = totals(result);
  return {
    summary: finalLine(result),
    seed,
    events,
    runs: t.runs,
    ...t.counters,
    seconds: Math.round(result.seconds),
    skipped: Object.fromEntries(result.skipped),
    failed: result.runs.filter(failed).map((run) => ({ seed: run.seed, kinds: run.kinds, ...run.counters, error: run.error, failures: run.failures.slice(0, 10), replay: replayCommand(run, events) })),
    by_run: result.runs.map((run) => ({ seed: run.seed, kinds: run.kinds, ...run.counters, seconds: Math.round(run.seconds), struck: run.struck, syncs: run.syncs, acknowledged: run.acknowledged })),
  };
}
