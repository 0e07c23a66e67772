// Shared measuring tools for the benchmarks: medians of rounds, progress on stderr, a table on stdout.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Figure {
  readonly key: string;
  readonly label: string;
  readonly value: number;
  readonly unit: string;
  readonly note?: string;
}

export function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs `fn` `rounds` times and returns the median of what it measured. */
export async function rounds(count: number, label: string, fn: (round: number) => number | Promise<number>): Promise<number> {
  const results: number[] = [];
  for (let round = 0; round < count; round++) {
    results.push(await fn(round));
    progress(`${label}: round ${round + 1}/${count}`);
  }
  return median(results);
}

/**
 * Runs every system once per round, in the same order each round (A B C A B C ...), so drift of a shared,
 * noisy machine falls on all of them alike. Returns each system's results, one per round.
 */
export async function interleaved<T>(count: number, label: string, systems: readonly string[], fn: (system: string, round: number) => Promise<T>): Promise<Map<string, T[]>> {
  const results = new Map<string, T[]>(systems.map((name) => [name, []]));
  for (let round = 0; round < count; round++) {
    for (const system of systems) results.get(system)!.push(await fn(system, round));
    progress(`${label}: round ${round + 1}/${count}`);
  }
  return results;
}

/** The median of per-round values with their range, e.g. for a note: "range 1,200–1,350 over 3 rounds". */
export function spread(values: readonly number[]): { median: number; min: number; max: number; note: string } {
  const finite = values.filter(Number.isFinite);
  const min = Math.min(...finite);
  const max = Math.max(...finite);
  return { median: median(finite), min, max, note: `range ${formatNumber(min)}–${formatNumber(max)} over ${finite.length} rounds` };
}

// Lines printed under the table: what a reader must know to read the figures (the machine, skipped work).
const tableNotes: string[] = [];

export function addNote(text: string): void {
  if (!tableNotes.includes(text)) tableNotes.push(text);
}

export function printNotes(): void {
  for (const text of tableNotes) console.log(`note: ${text}`);
}

export function seconds(start: number): number {
  return (performance.now() - start) / 1000;
}

/** A scratch folder on the real disk (not tmpfs: fsync must cost what it costs). */
export function scratch(name: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `motebit-bench-${name}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function printTable(figures: readonly Figure[]): void {
  const rows = figures.map((f) => [f.label, formatNumber(f.value), f.unit, f.note ?? '']);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length), ['figure', 'value', 'unit', 'note'][i]!.length));
  const line = (cells: string[]) => cells.map((c, i) => (i === 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  console.log(line(['figure', 'value', 'unit', 'note']));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const row of rows) console.log(line(row));
}

export function formatNumber(value: number): string {
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(3);
}
