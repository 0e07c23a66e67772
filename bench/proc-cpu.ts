// CPU used by a PostgreSQL cluster (Linux /proc): the postmaster, its live children (backends, WAL
// writer, checkpointer, ...) and the children it already reaped (cutime/cstime). A relay's figures beside
// PostgreSQL's must count both: with SQLite the store's work is inside the relay process.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Fields of /proc/PID/stat after "(comm)": [state, ppid, ..., utime at 11, stime 12, cutime 13, cstime 14]. */
function statFields(pid: string): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null; // gone meanwhile
  }
}

/** The postmaster's pid of the cluster in `dataDir` (first line of postmaster.pid), or null. */
export function postmasterPid(dataDir: string): string | null {
  try {
    return readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]?.trim() || null;
  } catch {
    return null;
  }
}

/** User + system CPU µs used so far by the cluster whose postmaster is `pid`, or null where /proc says nothing. */
export function clusterCpuMicros(pid: string): number | null {
  const main = statFields(pid);
  if (!main) return null;
  const ticks = (fields: string[], from: number, to: number): number => fields.slice(from, to + 1).reduce((sum, field) => sum + Number(field), 0);
  let total = ticks(main, 11, 14);
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry) || entry === pid) continue;
    const fields = statFields(entry);
    if (fields?.[1] === pid) total += ticks(fields, 11, 12);
  }
  return (total / clockTicks()) * 1e6;
}
