// CPU over a measured window, split by who spent it: the relay instances (process.cpuUsage in each child),
// the PostgreSQL cluster (/proc) and the bench clients (this process). On a small shared machine the sum
// over the window's wall time says how many cores were busy: near the core count, CPU binds, not a store.
import { availableParallelism } from 'node:os';
import { formatNumber, spread, type Figure } from './support.ts';

export interface CpuWindow {
  /** µs, all relay instances. */
  relay: number;
  /** µs, the PostgreSQL cluster (0 for SQLite, or where /proc says nothing). */
  pg: number;
  /** µs, this process: the bench's clients. */
  client: number;
  wallSeconds: number;
}

/** Runs `work` and measures the CPU each side spent meanwhile. */
export async function measureCpu<T>(meters: { relay: () => Promise<number>; pg: () => number }, work: () => Promise<T>): Promise<{ result: T; cpu: CpuWindow }> {
  const relayBefore = await meters.relay();
  const pgBefore = meters.pg();
  const clientBefore = process.cpuUsage();
  const start = performance.now();
  const result = await work();
  const wallSeconds = (performance.now() - start) / 1000;
  const client = process.cpuUsage(clientBefore);
  const pg = meters.pg() - pgBefore;
  const relay = (await meters.relay()) - relayBefore;
  return { result, cpu: { relay, pg, client: client.user + client.system, wallSeconds } };
}

/**
 * The figure "server CPU per <unit>": relays (or, with 'server', another server process) + PostgreSQL (the
 * clients beside it, not counted), median of rounds with the range, and how many of the machine's cores
 * all three kept busy.
 */
export function serverCpuFigure(key: string, label: string, windows: readonly CpuWindow[], units: readonly number[], store: 'sqlite' | 'pg' | 'raw' | 'server'): Figure {
  const per = (pick: (w: CpuWindow) => number): ReturnType<typeof spread> => spread(windows.map((w, i) => pick(w) / units[i]!));
  const server = per((w) => w.relay + w.pg);
  const busy = spread(windows.map((w) => (w.relay + w.pg + w.client) / 1e6 / w.wallSeconds)).median;
  const split =
    store === 'sqlite'
      ? 'relay (store inside)'
      : store === 'server'
        ? 'the server process'
        : store === 'raw'
          ? 'PostgreSQL only'
          : `relays ${formatNumber(per((w) => w.relay).median)} + PostgreSQL ${formatNumber(per((w) => w.pg).median)}`;
  return {
    key,
    label,
    value: server.median,
    unit: 'µs',
    note: `${split}; clients ${formatNumber(per((w) => w.client).median)} more; ${busy.toFixed(2)} of ${availableParallelism()} cores busy; ${server.note}`,
  };
}
