// The CLI's put: the wall time of `motebit-sync put`, as scripts/cli-timing.ts measures it (that script
// owns the measurement: the built bin started through its #!/usr/bin/env node line, a fresh process per
// run against a real relay; this section only runs it and reads its median). When the script is not
// there, or prints no median this section can read, the section says so and contributes no figure.
//
// The script is run with --json (and --runs 7 under --quick); its last stdout line is one JSON object with
// cli_put_ms (the median) and its spread. Read in this order: that line's cli_put_ms (or put_ms, median_ms,
// put_median_ms); else the last line of the form "... median ... <number> ms". If the run with options
// fails, the script is run once more without them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { addNote, progress, type Figure } from './support.ts';

const SCRIPT = fileURLToPath(new URL('../scripts/cli-timing.ts', import.meta.url));
const KEYS = ['cli_put_ms', 'put_ms', 'median_ms', 'put_median_ms'];
const TIMEOUT_MS = 10 * 60_000;

function run(args: string[]): { ok: boolean; stdout: string; why: string } {
  // stderr is the script's progress: it goes where ours goes.
  const result = spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', timeout: TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, stdio: ['ignore', 'pipe', 'inherit'] });
  const why = result.error ? String(result.error) : `exited with ${result.status ?? result.signal}`;
  return { ok: result.status === 0, stdout: result.stdout ?? '', why };
}

/** The spread the script printed beside its median (JSON output only), for the figure's note. */
function spreadNote(stdout: string): string {
  try {
    const j = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
    const n = (key: string): string | null => (typeof j[key] === 'number' ? String(j[key]) : null);
    const parts = [
      n('runs') && `${n('runs')} runs`,
      n('min_ms') && n('max_ms') && `range ${n('min_ms')}–${n('max_ms')} ms`,
      n('p10_ms') && n('p90_ms') && `p10–p90 ${n('p10_ms')}–${n('p90_ms')} ms`,
      n('cold_ms') && `first run (cold compile cache) ${n('cold_ms')} ms`,
    ].filter(Boolean);
    return parts.length ? `; ${parts.join(', ')}` : '';
  } catch {
    return '';
  }
}

/** The median put time the script printed, or null. */
export function readMedian(stdout: string): number | null {
  const lines = stdout.split('\n').map((line) => line.trim()).filter(Boolean);
  try {
    const parsed = JSON.parse(lines.at(-1) ?? '') as Record<string, unknown>;
    for (const key of KEYS) if (typeof parsed[key] === 'number' && Number.isFinite(parsed[key])) return parsed[key];
  } catch {
    // not JSON: try the words
  }
  for (const line of lines.toReversed()) {
    const match = /median\D*?(\d+(?:\.\d+)?)\s*ms/i.exec(line);
    if (match) return Number(match[1]);
  }
  return null;
}

export async function cliBench(options: { quick: boolean }): Promise<Figure[]> {
  if (!existsSync(SCRIPT)) {
    progress('cli: scripts/cli-timing.ts is not available; no figure');
    addNote('cli section: scripts/cli-timing.ts is not available; it contributes no figure (cli_put_ms absent)');
    return [];
  }
  progress('cli: running scripts/cli-timing.ts');
  let result = run(['--json', ...(options.quick ? ['--runs', '7'] : [])]);
  if (!result.ok) result = run([]);
  const median = result.ok ? readMedian(result.stdout) : null;
  if (median === null) {
    const why = result.ok ? 'printed no median this section can read' : `failed (${result.why})`;
    progress(`cli: scripts/cli-timing.ts ${why}`);
    addNote(`cli section: scripts/cli-timing.ts ${why}; it contributes no figure (cli_put_ms absent)`);
    return [];
  }
  return [{ key: 'cli_put_ms', label: 'motebit-sync put, wall time (median)', value: median, unit: 'ms', note: `scripts/cli-timing.ts${spreadNote(result.stdout)}` }];
}
