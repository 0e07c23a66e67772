// Read-only views of the SQLite files: the device stores (events, state, conflicts) and the relay's
// database (which event ids it holds). Nothing here ever writes a database the programs use. A file that
// cannot be opened read-only right now (a writer was SIGKILLed and the log needs recovery) is retried,
// and for the final check it is copied aside and the copy is read.
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyDatabase } from './relay-host.ts';

function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs fn on a read-only connection; retries while the file is busy; throws after the last try. */
export function withReadOnly<T>(path: string, fn: (db: Database.Database) => T, options: { copyOnFailure?: boolean } = {}): T {
  let lastError: unknown;
  for (let attempt = 0; attempt < 6; attempt++) {
    let db: Database.Database | null = null;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true, timeout: 2_000 });
      return fn(db);
    } catch (error) {
      lastError = error;
      pause(50 * (attempt + 1));
    } finally {
      db?.close();
    }
  }
  if (options.copyOnFailure && existsSync(path)) {
    const dir = mkdtempSync(join(tmpdir(), 'motebit-faults-copy-'));
    try {
      copyDatabase(path, join(dir, 'copy.db'));
      const db = new Database(join(dir, 'copy.db'));
      try {
        return fn(db);
      } finally {
        db.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

export interface DeviceEvent {
  readonly eventId: string;
  readonly deviceId: string;
  readonly deviceSeq: number;
  readonly hash: string;
  readonly entity: string;
  /** The campaign's marker in the value ({"m": ...}), or null. */
  readonly marker: string | null;
}

export interface DeviceView {
  readonly events: DeviceEvent[];
  /** entity -> winning event id */
  readonly state: Map<string, string>;
  /** "event_a event_b resolved_by" per conflict */
  readonly conflicts: Set<string>;
  /** Events received and never applied (reported by the device). */
  readonly rejected: number;
}

function markerOf(body: string): string | null {
  try {
    const event = JSON.parse(body) as { payload?: unknown };
    const payload = event.payload;
    if (typeof payload === 'object' && payload !== null && typeof (payload as { m?: unknown }).m === 'string') return (payload as { m: string }).m;
  } catch {
    // not JSON: no marker
  }
  return null;
}

export function readDevice(path: string, options: { copyOnFailure?: boolean } = {}): DeviceView {
  return withReadOnly(
    path,
    (db) => {
      const events = db
        .prepare<[], { event_id: string; device_id: string; device_seq: number; hash: string; entity: string; body: string }>('SELECT event_id, device_id, device_seq, hash, entity, body FROM events')
        .all()
        .map((row) => ({ eventId: row.event_id, deviceId: row.device_id, deviceSeq: row.device_seq, hash: row.hash, entity: row.entity, marker: markerOf(row.body) }));
      const state = new Map(db.prepare<[], { entity: string; event_id: string }>('SELECT entity, event_id FROM state').all().map((row) => [row.entity, row.event_id] as const));
      const conflicts = new Set(
        db
          .prepare<[], { event_a: string; event_b: string; resolved_by: string | null }>('SELECT event_a, event_b, resolved_by FROM conflicts')
          .all()
          .map((row) => `${row.event_a} ${row.event_b} ${row.resolved_by ?? '-'}`),
      );
      let rejected = 0;
      try {
        rejected = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM rejected_events').get()?.n ?? 0;
      } catch {
        // an older schema without the table
      }
      return { events, state, conflicts, rejected };
    },
    options,
  );
}

/** Every event id in a device store (optionally only those written by one device). */
export function deviceEventIds(path: string, writer?: string): Set<string> {
  return withReadOnly(path, (db) => {
    const rows = writer
      ? db.prepare<[string], { event_id: string }>('SELECT event_id FROM events WHERE device_id = ?').all(writer)
      : db.prepare<[], { event_id: string }>('SELECT event_id FROM events').all();
    return new Set(rows.map((row) => row.event_id));
  });
}

/** Every event id the relay's database holds (all motebits: a run has one). Empty for a missing file. */
export function relayEventIds(path: string): Set<string> {
  if (!existsSync(path)) return new Set();
  return withReadOnly(path, (db) => {
    const table = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'").get();
    if (!table) return new Set<string>();
    return new Set(db.prepare<[], { event_id: string }>('SELECT event_id FROM events').all().map((row) => row.event_id));
  });
}

/** Event ids the relay holds more than once (its schema forbids it; checked anyway). */
export function relayDuplicateIds(path: string): string[] {
  if (!existsSync(path)) return [];
  return withReadOnly(path, (db) => {
    const table = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'").get();
    if (!table) return [];
    return db.prepare<[], { event_id: string }>('SELECT event_id FROM events GROUP BY motebit_id, event_id HAVING COUNT(*) > 1').all().map((row) => row.event_id);
  }, { copyOnFailure: true });
}
