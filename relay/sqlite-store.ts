// RelayStore on SQLite (better-sqlite3, WAL): prepared statements, one transaction per batch, fan-out to
// subscribers in this process after each commit. Keys are all (motebit_id, ...).
import Database from 'better-sqlite3';
import { newLogEpoch } from '../shared/ids.ts';
import type { PushResult } from '../shared/relay-api.ts';
import type { StoredWireEvent, WireEvent } from '../shared/wire.ts';
import type { AppendResult, DeviceRecord, EnrolInput, EnrolOutcome, LogFrontier, Notification, ReadResult, RelayStore, RevokeOutcome } from './store.ts';

const SCHEMA_VERSION = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS motebits (
  motebit_id   TEXT PRIMARY KEY,
  identity_key BLOB NOT NULL,
  head         INTEGER NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS devices (
  motebit_id  TEXT NOT NULL REFERENCES motebits (motebit_id),
  device_id   TEXT NOT NULL,
  key         BLOB NOT NULL,
  cert        TEXT NOT NULL,
  name        TEXT,
  enrolled_at INTEGER NOT NULL,
  revoked_at  INTEGER,
  PRIMARY KEY (motebit_id, device_id)
) STRICT;
CREATE TABLE IF NOT EXISTS events (
  motebit_id TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  event_id   TEXT NOT NULL,
  device_id  TEXT NOT NULL,
  device_seq INTEGER NOT NULL,
  key_id     TEXT,
  body       TEXT NOT NULL,
  PRIMARY KEY (motebit_id, seq),
  UNIQUE (motebit_id, event_id),
  UNIQUE (motebit_id, device_id, device_seq)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (
  motebit_id TEXT NOT NULL,
  signer     TEXT NOT NULL,
  nonce      TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (motebit_id, signer, nonce)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonces_by_expiry ON nonces (expires_at);
`;

/**
 * Version 2: each motebit's log has an epoch, a random id made with the log, so a device can tell a
 * replaced database from the one it synced with; and each writer's highest stored device_seq, kept with
 * every batch, so the frontier costs one read per device and a gap can be refused without a lookup.
 */
function migrateTo2(db: Database.Database): void {
  db.exec(`
    ALTER TABLE motebits ADD COLUMN epoch TEXT;
    CREATE TABLE device_heads (
      motebit_id TEXT NOT NULL,
      device_id  TEXT NOT NULL,
      seq        INTEGER NOT NULL,
      PRIMARY KEY (motebit_id, device_id)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO device_heads (motebit_id, device_id, seq)
      SELECT motebit_id, device_id, max(device_seq) FROM events GROUP BY motebit_id, device_id;
  `);
  const setEpoch = db.prepare('UPDATE motebits SET epoch = ? WHERE motebit_id = ?');
  for (const { motebit_id } of db.prepare<[], { motebit_id: string }>('SELECT motebit_id FROM motebits').all()) setEpoch.run(newLogEpoch(), motebit_id);
}

/** Envelope bytes counted per event on top of its body when capping a page. */
export const EVENT_OVERHEAD_BYTES = 200;

interface DeviceRow {
  motebit_id: string;
  device_id: string;
  key: Buffer;
  cert: string;
  name: string | null;
  enrolled_at: number;
  revoked_at: number | null;
}

interface EventRow {
  seq: number;
  event_id: string;
  device_id: string;
  device_seq: number;
  key_id: string | null;
  body: string;
}

const toDevice = (row: DeviceRow): DeviceRecord => ({
  motebitId: row.motebit_id,
  deviceId: row.device_id,
  key: row.key,
  cert: row.cert,
  name: row.name,
  enrolledAt: row.enrolled_at,
  revokedAt: row.revoked_at,
});

const toEvent = (row: EventRow): StoredWireEvent => ({
  event_id: row.event_id,
  device_id: row.device_id,
  device_seq: row.device_seq,
  key_id: row.key_id,
  body: row.body,
  seq: row.seq,
});

export class SqliteStore implements RelayStore {
  readonly #db: Database.Database;
  readonly #listeners = new Map<string, Set<(notification: Notification) => void>>();
  readonly #stmt;
  readonly #append;
  readonly #enrol;
  readonly #revoke;
  readonly #read;
  readonly #frontier;

  constructor(path: string) {
    const db = new Database(path);
    this.#db = db;
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL'); // an acknowledged event survives a power cut, not only a crash
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw new Error(`database schema ${version} is newer than this relay (${SCHEMA_VERSION})`);
    db.transaction(() => {
      db.exec(SCHEMA);
      if (version < 2) migrateTo2(db);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }).immediate();

    const stmt = {
      identityKey: db.prepare<[string], { identity_key: Buffer }>('SELECT identity_key FROM motebits WHERE motebit_id = ?'),
      head: db.prepare<[string], { head: number; epoch: string }>('SELECT head, epoch FROM motebits WHERE motebit_id = ?'),
      insertMotebit: db.prepare('INSERT INTO motebits (motebit_id, identity_key, head, created_at, epoch) VALUES (?, ?, 0, ?, ?)'),
      deviceHead: db.prepare<[string, string], { seq: number }>('SELECT seq FROM device_heads WHERE motebit_id = ? AND device_id = ?'),
      setDeviceHead: db.prepare(`INSERT INTO device_heads (motebit_id, device_id, seq) VALUES (?, ?, ?)
                                 ON CONFLICT (motebit_id, device_id) DO UPDATE SET seq = excluded.seq`),
      deviceHeads: db.prepare<[string], { device_id: string; seq: number }>('SELECT device_id, seq FROM device_heads WHERE motebit_id = ? ORDER BY device_id'),
      setHead: db.prepare('UPDATE motebits SET head = ? WHERE motebit_id = ?'),
      device: db.prepare<[string, string], DeviceRow>('SELECT * FROM devices WHERE motebit_id = ? AND device_id = ?'),
      devices: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE motebit_id = ? ORDER BY enrolled_at, device_id'),
      insertDevice: db.prepare('INSERT INTO devices (motebit_id, device_id, key, cert, name, enrolled_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)'),
      revokeDevice: db.prepare('UPDATE devices SET revoked_at = ? WHERE motebit_id = ? AND device_id = ? AND revoked_at IS NULL'),
      useNonce: db.prepare('INSERT OR IGNORE INTO nonces (motebit_id, signer, nonce, expires_at) VALUES (?, ?, ?, ?)'),
      pruneNonces: db.prepare('DELETE FROM nonces WHERE expires_at < ?'),
      eventAt: db.prepare<[string, number], { event_id: string }>('SELECT event_id FROM events WHERE motebit_id = ? AND seq = ?'),
      eventById: db.prepare<[string, string], { seq: number; device_id: string }>('SELECT seq, device_id FROM events WHERE motebit_id = ? AND event_id = ?'),
      insertEvent: db.prepare('INSERT INTO events (motebit_id, seq, event_id, device_id, device_seq, key_id, body) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      readAfter: db.prepare<[string, number, number], EventRow>(
        'SELECT seq, event_id, device_id, device_seq, key_id, body FROM events WHERE motebit_id = ? AND seq > ? ORDER BY seq LIMIT ?',
      ),
    };
    this.#stmt = stmt;

    this.#append = db.transaction((motebitId: string, events: WireEvent[]) => {
      const log = stmt.head.get(motebitId);
      let head = log?.head ?? 0;
      const results: PushResult[] = [];
      const stored: StoredWireEvent[] = [];
      // Each writer's highest stored device_seq, as the batch goes: a writer's events are stored gap-free.
      const writerHeads = new Map<string, number>();
      const writerHead = (deviceId: string): number => writerHeads.get(deviceId) ?? stmt.deviceHead.get(motebitId, deviceId)?.seq ?? 0;
      for (const event of events) {
        const existing = stmt.eventById.get(motebitId, event.event_id);
        if (existing) {
          results.push(
            existing.device_id === event.device_id
              ? { event_id: event.event_id, status: 'duplicate', seq: existing.seq }
              : { event_id: event.event_id, status: 'rejected', reason: 'event_id_taken' },
          );
          continue;
        }
        const writer = writerHead(event.device_id);
        if (event.device_seq <= writer) {
          results.push({ event_id: event.event_id, status: 'rejected', reason: 'device_seq_conflict' });
          continue;
        }
        if (event.device_seq !== writer + 1) {
          results.push({ event_id: event.event_id, status: 'rejected', reason: 'device_seq_gap' });
          continue;
        }
        head += 1;
        stmt.insertEvent.run(motebitId, head, event.event_id, event.device_id, event.device_seq, event.key_id, event.body);
        writerHeads.set(event.device_id, event.device_seq);
        stored.push({ ...event, seq: head });
        results.push({ event_id: event.event_id, status: 'stored', seq: head });
      }
      if (stored.length > 0) {
        stmt.setHead.run(head, motebitId);
        for (const [deviceId, seq] of writerHeads) stmt.setDeviceHead.run(motebitId, deviceId, seq);
      }
      return { results, head, epoch: log?.epoch ?? '', stored };
    });

    // Reads are one snapshot each, so a page's head and epoch describe the log the page came from.
    this.#read = db.transaction((motebitId: string, after: number, limit: number, maxBytes: number): ReadResult => {
      const log = stmt.head.get(motebitId);
      const rows = stmt.readAfter.all(motebitId, after, limit + 1);
      const events: StoredWireEvent[] = [];
      let bytes = 0;
      for (const row of rows.slice(0, limit)) {
        const size = row.body.length + EVENT_OVERHEAD_BYTES;
        if (events.length > 0 && bytes + size > maxBytes) break;
        bytes += size;
        events.push(toEvent(row));
      }
      return { events, more: rows.length > events.length, head: log?.head ?? 0, epoch: log?.epoch ?? '' };
    });

    this.#frontier = db.transaction((motebitId: string, at: number | undefined): LogFrontier => {
      const log = stmt.head.get(motebitId);
      return {
        epoch: log?.epoch ?? '',
        head: log?.head ?? 0,
        devices: stmt.deviceHeads.all(motebitId).map((row) => ({ deviceId: row.device_id, seq: row.seq })),
        at: at === undefined ? null : { seq: at, eventId: stmt.eventAt.get(motebitId, at)?.event_id ?? null },
      };
    });

    this.#enrol = db.transaction((input: EnrolInput): EnrolOutcome => {
      const identity = stmt.identityKey.get(input.motebitId);
      if (!identity) stmt.insertMotebit.run(input.motebitId, input.identityKey, input.now, newLogEpoch());
      else if (!identity.identity_key.equals(input.identityKey)) return { kind: 'wrong_identity' };
      const existing = stmt.device.get(input.motebitId, input.deviceId);
      if (existing) {
        if (existing.revoked_at !== null) return { kind: 'revoked' };
        if (!existing.key.equals(input.deviceKey)) return { kind: 'key_mismatch' };
        return { kind: 'exists', device: toDevice(existing) };
      }
      stmt.insertDevice.run(input.motebitId, input.deviceId, input.deviceKey, input.cert, input.name, input.now);
      const row = stmt.device.get(input.motebitId, input.deviceId);
      if (!row) throw new Error('device row vanished inside its own transaction');
      return { kind: 'created', device: toDevice(row) };
    });

    this.#revoke = db.transaction((motebitId: string, deviceId: string, now: number): RevokeOutcome => {
      const existing = stmt.device.get(motebitId, deviceId);
      if (!existing) return { kind: 'unknown' };
      if (existing.revoked_at !== null) return { kind: 'already_revoked', device: toDevice(existing) };
      stmt.revokeDevice.run(now, motebitId, deviceId);
      return { kind: 'revoked', device: { ...toDevice(existing), revokedAt: now } };
    });
  }

  async identityKey(motebitId: string): Promise<Buffer | null> {
    return this.#stmt.identityKey.get(motebitId)?.identity_key ?? null;
  }

  async enrolDevice(input: EnrolInput): Promise<EnrolOutcome> {
    return this.#enrol.immediate(input);
  }

  async device(motebitId: string, deviceId: string): Promise<DeviceRecord | null> {
    const row = this.#stmt.device.get(motebitId, deviceId);
    return row ? toDevice(row) : null;
  }

  async devices(motebitId: string): Promise<DeviceRecord[]> {
    return this.#stmt.devices.all(motebitId).map(toDevice);
  }

  async revokeDevice(motebitId: string, deviceId: string, now: number): Promise<RevokeOutcome> {
    const outcome = this.#revoke.immediate(motebitId, deviceId, now);
    if (outcome.kind === 'revoked') this.#notify(motebitId, { kind: 'revoked', deviceId });
    return outcome;
  }

  async useNonce(motebitId: string, signer: string, nonce: string, expiresAt: number): Promise<boolean> {
    return this.#stmt.useNonce.run(motebitId, signer, nonce, expiresAt).changes === 1;
  }

  async pruneNonces(now: number): Promise<void> {
    this.#stmt.pruneNonces.run(now);
  }

  async appendBatch(motebitId: string, events: WireEvent[]): Promise<AppendResult> {
    const { results, head, epoch, stored } = this.#append.immediate(motebitId, events);
    if (stored.length > 0) this.#notify(motebitId, { kind: 'events', events: stored });
    return { results, head, epoch };
  }

  async readAfter(motebitId: string, after: number, limit: number, maxBytes: number): Promise<ReadResult> {
    return this.#read.deferred(motebitId, after, limit, maxBytes);
  }

  async head(motebitId: string): Promise<number> {
    return this.#stmt.head.get(motebitId)?.head ?? 0;
  }

  async frontier(motebitId: string, at?: number): Promise<LogFrontier> {
    return this.#frontier.deferred(motebitId, at);
  }

  subscribe(motebitId: string, listener: (notification: Notification) => void): () => void {
    let set = this.#listeners.get(motebitId);
    if (!set) {
      set = new Set();
      this.#listeners.set(motebitId, set);
    }
    set.add(listener);
    return () => {
      const current = this.#listeners.get(motebitId);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) this.#listeners.delete(motebitId);
    };
  }

  #notify(motebitId: string, notification: Notification): void {
    for (const listener of [...(this.#listeners.get(motebitId) ?? [])]) {
      try {
        listener(notification);
      } catch {
        // a subscriber's failure is its own; the others still hear the news
      }
    }
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    if (!this.#db.open) return;
    this.#db.pragma('wal_checkpoint(TRUNCATE)');
    this.#db.close();
  }
}
