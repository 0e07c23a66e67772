// The device store's connection settings: every commit as durable as before (WAL, synchronous FULL), and
// checkpoints every 10000 log pages rather than every 1000 (what a bulk apply of received events needs).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type SqliteDatabase } from '../main/store/database.ts';
import { tempDir } from './support/motebit.ts';

let dir: ReturnType<typeof tempDir>;
let db: SqliteDatabase | undefined;
beforeEach(() => void (dir = tempDir('store-settings')));
afterEach(() => {
  db?.close();
  dir.remove();
});

describe('openDatabase', () => {
  it('keeps WAL and synchronous FULL, with a checkpoint every 10000 pages', () => {
    db = openDatabase(`${dir.path}/store.db`);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(10_000);
  });
});
