// Opening a device's SQLite file: WAL for concurrent readers, FULL sync so a committed append survives a
// crash or power loss, and versioned migrations applied in one transaction each.
import Database from 'better-sqlite3';
import { MIGRATIONS } from './migrations.ts';

export type SqliteDatabase = Database.Database;

export class StoreOpenError extends Error {
  override name = 'StoreOpenError';
}

export function openDatabase(path: string): SqliteDatabase {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    // FULL in WAL mode fsyncs the log on every commit: after append() returns, the event is on disk.
    db.pragma('synchronous = FULL');
    // Checkpoint the log into the database file every 10000 pages (about 40 MB) rather than SQLite's 1000:
    // a page of received events dirties pages all over the event-id index, so at 1000 nearly every commit
    // of an initial sync also ran a checkpoint that copied those pages again. Commits are as durable (the
    // log is still fsynced on each); the log file just grows larger before it is reused.
    db.pragma('wal_autocheckpoint = 10000');
    db.pragma('foreign_keys = ON');
    // The tray app and the CLI may open the same home at once; wait for the other writer instead of failing.
    db.pragma('busy_timeout = 5000');
    migrate(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

function migrate(db: SqliteDatabase): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new StoreOpenError(
      `this store was written by a newer Motebit Sync (schema ${current}, this version knows ${MIGRATIONS.length}); update the app before opening it`,
    );
  }
  for (let version = current + 1; version <= MIGRATIONS.length; version++) {
    const sql = MIGRATIONS[version - 1]!;
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${version}`);
    }).immediate();
  }
}
