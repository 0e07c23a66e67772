// A Hocuspocus extension that gives Hocuspocus our relay's durability contract: every document update a
// client sends is committed to SQLite (WAL, synchronous=FULL, one transaction per message: one fsync)
// before Hocuspocus applies it, broadcasts it and acknowledges it (SyncStatus).
//
// Why beforeHandleMessage: it is the one hook Hocuspocus awaits before it handles a message
// (Connection.handleMessage: beforeHandleMessage(...).then(apply)). onChange fires after the update is
// applied and broadcast, without being awaited; onStoreDocument runs debounced (2 s) on the whole
// document; beforeSync is not awaited either. A commit in any of those would come after the ack.
// The write is synchronous (better-sqlite3) on the event loop, as our relay's is.
import Database from 'better-sqlite3';
import type { Extension, beforeHandleMessagePayload } from '@hocuspocus/server';
import * as decoding from 'lib0/decoding';

const SYNC = 0;
const SYNC_REPLY = 4;
const SYNC_STEP_2 = 1;
const SYNC_UPDATE = 2;

/** The document update a message carries (sync step 2 or update), or null for any other message. */
function updateOf(message: Uint8Array): Uint8Array | null {
  const decoder = decoding.createDecoder(message);
  decoding.readVarString(decoder); // document name
  const type = decoding.readVarUint(decoder);
  if (type !== SYNC && type !== SYNC_REPLY) return null;
  const subtype = decoding.readVarUint(decoder);
  return subtype === SYNC_STEP_2 || subtype === SYNC_UPDATE ? decoding.readVarUint8Array(decoder) : null;
}

export function sqliteDurability(path: string): { extension: Extension; close(): void } {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE IF NOT EXISTS updates (id INTEGER PRIMARY KEY, document TEXT NOT NULL, "update" BLOB NOT NULL)');
  const insert = db.prepare('INSERT INTO updates (document, "update") VALUES (?, ?)');
  const extension: Extension = {
    extensionName: 'bench-sqlite-durability',
    async beforeHandleMessage({ documentName, update: message }: beforeHandleMessagePayload) {
      const update = updateOf(message);
      if (update) insert.run(documentName, update);
    },
  };
  return { extension, close: () => db.close() };
}
