// The one place that turns `--db` into a store: a postgres:// (or postgresql://) URL opens PostgreSQL,
// anything else is a SQLite file path.
import type { Logger } from './log.ts';
import { PgStore, isPostgresUrl } from './pg-store.ts';
import { SqliteStore } from './sqlite-store.ts';
import type { RelayStore } from './store.ts';

export async function openStore(db: string, log?: Logger): Promise<RelayStore> {
  if (isPostgresUrl(db)) return PgStore.open({ url: db, ...(log ? { log } : {}) });
  return new SqliteStore(db);
}
