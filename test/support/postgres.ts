// A throwaway PostgreSQL cluster for tests: Debian's binaries, initdb + pg_ctl in a temp folder, on a free
// port on 127.0.0.1, run as the `postgres` user when we are root (PostgreSQL refuses to run as root).
// Nothing is faked: where no binaries exist, `findPostgresBin` says so and callers skip, saying why.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './ports.ts';

export interface PostgresCluster {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  adminUrl: string;
  port: number;
  dir: string;
  /** A URL for database `name` (created when missing). */
  database(name: string): Promise<string>;
  stop(): void;
}

/** The newest /usr/lib/postgresql/N/bin with initdb, or $MOTEBIT_PG_BIN, or null. */
export function findPostgresBin(): string | null {
  const configured = process.env.MOTEBIT_PG_BIN;
  if (configured) return existsSync(join(configured, 'initdb')) ? configured : null;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((name) => /^[0-9]+$/.test(name) && existsSync(join(root, name, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : null;
}

function passwd(name: string): { uid: number; gid: number } | null {
  try {
    const id = (flag: string): number => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    return null;
  }
}

/** Starts a cluster; throws with the server's log when it cannot. */
export async function startPostgres(bin: string): Promise<PostgresCluster> {
  const root = process.getuid?.() === 0;
  const owner = root ? passwd('postgres') : null;
  if (root && !owner) throw new Error('running as root, and there is no `postgres` user to run PostgreSQL as');
  const dir = mkdtempSync(join(tmpdir(), 'motebit-pg-'));
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const run = (program: string, args: string[]): string => {
    const [command, argv] = root ? ['runuser', ['-u', 'postgres', '--', join(bin, program), ...args]] : [join(bin, program), args];
    return execFileSync(command, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  };
  const data = join(dir, 'data');
  const port = await freePort();
  try {
    run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '--locale', 'C']);
    run('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=300`, '-w', 'start']);
  } catch (error) {
    let log = '';
    try {
      log = execFileSync('cat', [join(dir, 'server.log')], { encoding: 'utf8' });
    } catch {
      // no log yet
    }
    rmSync(dir, { recursive: true, force: true });
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`PostgreSQL did not start: ${error instanceof Error ? error.message : String(error)}\n${stderr}\n${log}`);
  }
  const base = `postgres://postgres@127.0.0.1:${port}`;
  const created = new Set<string>();
  return {
    adminUrl: `${base}/postgres`,
    port,
    dir,
    async database(name: string): Promise<string> {
      if (!created.has(name)) {
        await createDatabase(`${base}/postgres`, name);
        created.add(name);
      }
      return `${base}/${name}`;
    },
    stop(): void {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Creates database `name` through the admin URL, unless it exists already. */
export async function createDatabase(adminUrl: string, name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a plain database name: ${name}`);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } catch (error) {
    if ((error as { code?: string }).code !== '42P04') throw error; // 42P04: it exists already
  } finally {
    await client.end();
  }
}
