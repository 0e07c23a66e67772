// The PostgreSQL cluster the pg section measures against: a throwaway cluster (test/support/postgres.ts:
// initdb + pg_ctl, PostgreSQL's default settings), a meter of its CPU, and the durability settings it
// actually runs with, read back from the server. Where this machine has no PostgreSQL binaries, says why.
import pg from 'pg';
import { findPostgresBin, startPostgres, type PostgresCluster } from '../test/support/postgres.ts';
import { clusterCpuMicros, postmasterPid } from './proc-cpu.ts';

export interface PgBenchContext {
  readonly cluster: PostgresCluster;
  /** A scratch folder for SQLite files. */
  readonly dir: string;
  /** Whether pgCpu() reads real figures (Linux /proc); 0 otherwise. */
  readonly pgCpuKnown: boolean;
  /** User + system CPU µs the cluster has used so far. */
  pgCpu(): number;
  /** server_version and the settings that decide what a commit costs. */
  readonly settings: Readonly<Record<string, string>>;
}

const SETTINGS = ['server_version', 'fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', 'commit_delay', 'shared_buffers'];

export async function openPgContext(dir: string): Promise<PgBenchContext | { skipped: string }> {
  const bin = findPostgresBin();
  if (!bin) {
    const configured = process.env.MOTEBIT_PG_BIN;
    return { skipped: configured ? `MOTEBIT_PG_BIN=${configured} has no initdb` : 'no PostgreSQL binaries on this machine (no /usr/lib/postgresql/N/bin/initdb): apt-get install postgresql' };
  }
  const cluster = await startPostgres(bin);
  try {
    const client = new pg.Client({ connectionString: cluster.adminUrl });
    await client.connect();
    const settings: Record<string, string> = {};
    try {
      for (const name of SETTINGS) settings[name] = String((await client.query<Record<string, unknown>>(`SHOW ${name}`)).rows[0]?.[name]);
    } finally {
      await client.end();
    }
    const pid = postmasterPid(`${cluster.dir}/data`);
    const known = pid !== null && clusterCpuMicros(pid) !== null;
    return { cluster, dir, settings, pgCpuKnown: known, pgCpu: () => (known ? (clusterCpuMicros(pid) ?? 0) : 0) };
  } catch (error) {
    cluster.stop();
    throw error;
  }
}
