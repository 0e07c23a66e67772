// The relay's admin commands: `migrate` (bring a database to this relay's schema and exit) and `copy`
// (move a relay from SQLite to PostgreSQL). Each prints what it did in words on stdout, progress on
// stderr, and throws with a plain message on failure (bin.ts turns that into exit code 1).
import Database from 'better-sqlite3';
import pg from 'pg';
import { copySqliteToPostgres, type CopyProgress } from './copy.ts';
import { migratePostgres } from './pg-schema.ts';
import { describePostgres, isPostgresUrl } from './pg-store.ts';
import { migrateSqlite } from './sqlite-store.ts';

export async function migrateCommand(db: string, out: (line: string) => void): Promise<void> {
  if (isPostgresUrl(db)) {
    const client = new pg.Client({ connectionString: db, application_name: 'motebit-relay-migrate' });
    try {
      await client.connect();
    } catch (error) {
      throw new Error(`could not connect to PostgreSQL at ${describePostgres(db)}: ${error instanceof Error ? error.message : String(error)}`);
    }
    try {
      report(await migratePostgres(client), describePostgres(db), out);
    } finally {
      await client.end().catch(() => undefined);
    }
    return;
  }
  const database = new Database(db);
  try {
    report(migrateSqlite(database), db, out);
  } finally {
    database.close();
  }
}

function report(applied: number[], where: string, out: (line: string) => void): void {
  out(applied.length === 0 ? `${where}: schema already up to date` : `${where}: applied schema version${applied.length > 1 ? 's' : ''} ${applied.join(', ')}`);
}

export async function copyCommand(from: string, to: string, out: (line: string) => void, err: (line: string) => void): Promise<void> {
  if (isPostgresUrl(from) || !isPostgresUrl(to)) throw new Error('copy moves a relay from a SQLite file to PostgreSQL: --from ./relay.db --to postgres://USER@HOST:PORT/DB');
  let last = '';
  const progress = ({ table, done, total }: CopyProgress): void => {
    const line = `copying ${table}: ${done}/${total}`;
    if (line !== last && (done === total || done % 20_000 === 0)) err(line);
    last = line;
  };
  const summary = await copySqliteToPostgres(from, to, progress);
  out(`copied ${summary.motebits} motebits, ${summary.devices} devices, ${summary.membershipEntries} membership entries, ${summary.events} events and ${summary.nonces} unexpired nonces to ${describePostgres(to)}`);
}
