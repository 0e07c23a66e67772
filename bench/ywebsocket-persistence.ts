// y-leveldb persistence for y-websocket's server, as y-websocket binds it itself when YPERSISTENCE is set
// (bin/utils.js, reproduced here so the LevelDB adapter can be chosen; setPersistence is its own hook):
// each document update, once applied and broadcast, is handed to y-leveldb's storeUpdate, NOT awaited.
// y-leveldb queues its writes (one at a time: read the document's last clock, put the update).
//
// Durability of that write path: y-leveldb puts with LevelDB's default WriteOptions (sync=false): the
// write reaches the OS, not the disk; a crash of the process loses nothing written, a power cut can lose
// the latest writes. y-leveldb has no sync option of its own; `sync: true` here passes LevelDB's own
// WriteOptions.sync=true on every put, batch and del through y-leveldb's `level` adapter option, so each
// write is fsynced. Either way the writer has heard its update back (and every receiver has it) before
// the write even starts: y-websocket never makes a client wait for storage.
import { createRequire } from 'node:module';
import type * as Yjs from 'yjs';

const require = createRequire(import.meta.url);
// CommonJS, as y-websocket's server loads them: one copy of yjs in the process.
const Y = require('yjs') as typeof Yjs;
const { LeveldbPersistence } = require('y-leveldb') as { LeveldbPersistence: new (location: string, options?: { level?: unknown }) => Leveldb };
const level = require('level') as (location: string, options: object) => LevelDb;

type Callback = (error?: Error | null) => void;
interface LevelDb {
  put(key: unknown, value: unknown, options?: object, callback?: Callback): Promise<void>;
  del(key: unknown, options?: object, callback?: Callback): Promise<void>;
  batch(ops?: unknown[], options?: object, callback?: Callback): Promise<void>;
}

/** `level`, with sync=true on every write (LevelDB fsyncs its log before the write completes). */
function syncLevel(location: string, options: object): LevelDb {
  const db = level(location, options);
  const put = db.put.bind(db);
  const del = db.del.bind(db);
  const batch = db.batch.bind(db);
  db.put = (key, value, opts, callback) => put(key, value, { ...opts, sync: true }, callback);
  db.del = (key, opts, callback) => del(key, { ...opts, sync: true }, callback);
  db.batch = (ops, opts, callback) => (ops === undefined ? batch() : batch(ops, { ...opts, sync: true }, callback));
  return db;
}

/** What of y-leveldb's LeveldbPersistence is used here (`tr` is its queue of writes, one promise chain). */
interface Leveldb {
  tr: Promise<unknown>;
  getYDoc(docName: string): Promise<Yjs.Doc>;
  storeUpdate(docName: string, update: Uint8Array): Promise<number>;
  destroy(): Promise<void>;
}

/** The shape y-websocket's setPersistence takes. */
export interface Persistence {
  provider: Leveldb;
  bindState(docName: string, ydoc: Yjs.Doc): Promise<void>;
  writeState(docName: string, ydoc: Yjs.Doc): Promise<void>;
}

export function leveldbPersistence(dir: string, options: { sync: boolean }): Persistence {
  const ldb = new LeveldbPersistence(dir, options.sync ? { level: syncLevel } : {});
  return {
    provider: ldb,
    bindState: async (docName, ydoc) => {
      const persistedYdoc = await ldb.getYDoc(docName);
      const newUpdates = Y.encodeStateAsUpdate(ydoc);
      void ldb.storeUpdate(docName, newUpdates);
      Y.applyUpdate(ydoc, Y.encodeStateAsUpdate(persistedYdoc));
      ydoc.on('update', (update: Uint8Array) => {
        void ldb.storeUpdate(docName, update);
      });
    },
    writeState: async () => undefined,
  };
}

/** Resolves once every write y-leveldb has queued so far is done (its queue is one promise chain). */
export async function drained(persistence: Persistence): Promise<void> {
  await persistence.provider.tr;
}
