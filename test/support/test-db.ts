// Which relay store the tests run against: SQLite files (the default), or PostgreSQL when the vitest
// project sets MOTEBIT_TEST_STORE=postgres. A test names its database by a file path either way; on
// PostgreSQL the same path always maps to the same database, so "restart the relay on the same file"
// means the same thing on both.
import { createHash } from 'node:crypto';
import { inject } from 'vitest';
import { openStore } from '../../relay/open-store.ts';
import type { RelayStore } from '../../relay/store.ts';
import { createDatabase } from './postgres.ts';

export const TEST_STORE: 'sqlite' | 'postgres' = process.env.MOTEBIT_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';

const created = new Map<string, Promise<string>>();

/** The PostgreSQL admin URL of this run's cluster (only in the PostgreSQL project). */
export function postgresAdminUrl(): string {
  const postgres = inject('postgres');
  if ('missing' in postgres) throw new Error(postgres.missing);
  return postgres.adminUrl;
}

/** A fresh PostgreSQL database for `key` (the same key, the same database). */
export function postgresDatabase(key: string): Promise<string> {
  const name = `t_${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;
  let url = created.get(name);
  if (!url) {
    const admin = postgresAdminUrl();
    url = createDatabase(admin, name).then(() => admin.replace(/\/postgres$/, `/${name}`));
    created.set(name, url);
  }
  return url;
}

/** What to pass as the relay's --db for a test that would use the SQLite file `path`. */
export function testDb(path: string): Promise<string> {
  return TEST_STORE === 'postgres' ? postgresDatabase(path) : Promise.resolve(path);
}

export async function openTestStore(path: string): Promise<RelayStore> {
  return openStore(await testDb(path));
}
