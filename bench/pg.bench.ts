// PostgreSQL beside SQLite, and several relay instances on one PostgreSQL database: ingest (SQLite 1
// relay; PostgreSQL 1, 2, 3 instances; PostgreSQL's raw commit ceiling) and fan-out across instances,
// each comparison interleaved round by round, medians with their range, server CPU per event beside the
// wall figures. PostgreSQL is a throwaway cluster with its default settings (fsync on, synchronous_commit
// on), read back and printed. Without PostgreSQL binaries the section says so and gives no figures.
import { availableParallelism, cpus, loadavg } from 'node:os';
import { openPgContext, type PgBenchContext } from './pg-context.ts';
import { pgFanout } from './pg-fanout.ts';
import { pgIngest } from './pg-ingest.ts';
import { addNote, progress, scratch, type Figure } from './support.ts';

function describeRun(context: PgBenchContext): void {
  const s = context.settings;
  const durable = s.fsync === 'on' && s.synchronous_commit === 'on';
  addNote(
    `pg: PostgreSQL ${s.server_version} as initdb leaves it: fsync=${s.fsync}, synchronous_commit=${s.synchronous_commit}, wal_sync_method=${s.wal_sync_method}, ` +
      `full_page_writes=${s.full_page_writes}, commit_delay=${s.commit_delay}, shared_buffers=${s.shared_buffers}` +
      (durable ? ': an acknowledged commit is on disk, the contract of the SQLite relay (WAL, synchronous=FULL)' : ': NOT the durability of the SQLite relay; the figures are not comparable'),
  );
  addNote(
    `pg: this machine has ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), shared and noisy (load average ${loadavg()[0]!.toFixed(2)} when the section began); ` +
      'the bench clients, every relay instance and PostgreSQL share those cores, so extra instances add processes, not CPU: read the ranges, not only the medians',
  );
  addNote(
    context.pgCpuKnown
      ? 'pg: server CPU = the relay processes (process.cpuUsage) + the PostgreSQL cluster (/proc: postmaster and its children) over the measured window; the bench clients are not counted'
      : "pg: PostgreSQL's CPU could not be read (/proc); PostgreSQL systems show no CPU figure",
  );
}

export async function pgBench(roundCount: number, options: { quick: boolean }): Promise<Figure[]> {
  const dir = scratch('pg');
  try {
    const context = await openPgContext(dir.path);
    if ('skipped' in context) {
      progress(`pg: skipped: ${context.skipped}`);
      addNote(`pg section skipped: ${context.skipped}; it contributes no figures`);
      return [];
    }
    try {
      describeRun(context);
      return [...(await pgIngest(context, roundCount, options.quick)), ...(await pgFanout(context, roundCount, options.quick))];
    } finally {
      context.cluster.stop();
    }
  } finally {
    dir.remove();
  }
}
