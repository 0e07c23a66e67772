// RelayStore on SQLite (better-sqlite3, WAL): prepared statements, one transaction per batch, fan-out to
// subscribers in this process after each commit. Keys are all (motebit_id, ...).
import Database from 'better-sqlite3';
import { newLogEpoch } from '../shared/ids.ts';
import type { StoredWireEvent, WireEvent } from '../shared/portable/wire.ts';
import { MAX_BATCH_EVENTS } from '../shared/portable/relay-api.ts';
import { planBatch } from './append-rule.ts';
import { beginConflict, chunkRefusal, coversText, hashChunks, newUpload } from './snapshot-rule.ts';
import {
  capPage,
  type AckRecord,
  type AppendQuota,
  type AppendResult,
  type ChunkPutOutcome,
  type CompactionResult,
  type CompactionState,
  type DeviceRecord,
  type EnrolInput,
  type EnrolOutcome,
  type LogFrontier,
  type Notification,
  type ReadResult,
  type RelayStore,
  type MembershipAppend,
  type MembershipAppendOutcome,
  type PairingRecord,
  type RevokeOutcome,
  type Sighting,
  type SnapshotBeginInput,
  type SnapshotBeginOutcome,
  type SnapshotCommitOutcome,
  type SnapshotRecord,
  type StoredEntry,
  type Usage,
} from './store.ts';
import { SNAPSHOT_COLUMNS, toAck, toDevice, toEvent, toSnapshot, type AckRow, type DeviceRow, type EventRow, type SnapshotRow } from './rows.ts';
import { Subscribers } from './subscribers.ts';

// Versioned migrations: the database's user_version says which have run; each runs once, in order, in
// one transaction with the rest. Version 1 is the first schema (IF NOT EXISTS only because databases from
// before versioning have its tables at user_version 0).
const MIGRATIONS: ((db: Database.Database) => void)[] = [
  (db) =>
    db.exec(`
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
    `),
  // 2: each motebit's log has an epoch, a random id made with the log, so a device can tell a replaced
  // database from the one it synced with; and each writer's highest stored device_seq, kept with every
  // batch, so the frontier costs one read per device and a gap can be refused without a lookup.
  (db) => {
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
  },
  // 3: what each motebit stores (events, body bytes), kept with every batch, for quotas.
  (db) =>
    db.exec(`
      ALTER TABLE motebits ADD COLUMN stored_events INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE motebits ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
      UPDATE motebits SET
        stored_events = (SELECT count(*) FROM events e WHERE e.motebit_id = motebits.motebit_id),
        stored_bytes = (SELECT coalesce(sum(length(body)), 0) FROM events e WHERE e.motebit_id = motebits.motebit_id);
    `),
  // 4: when each device was last seen and how far it has read the log, for the device list.
  (db) =>
    db.exec(`
      ALTER TABLE devices ADD COLUMN last_seen_at INTEGER;
      ALTER TABLE devices ADD COLUMN read_seq INTEGER NOT NULL DEFAULT 0;
    `),
  // 5: the membership log of each motebit (docs/keys.md), entries as checked JSON text.
  (db) =>
    db.exec(`
      CREATE TABLE membership (
        motebit_id TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        hash       TEXT NOT NULL,
        entry      TEXT NOT NULL,
        PRIMARY KEY (motebit_id, seq)
      ) WITHOUT ROWID;
    `),
  // 6: pairing rendezvous (docs/keys.md): short-lived, not scoped by motebit (the new device knows none yet).
  (db) =>
    db.exec(`
      CREATE TABLE pairings (
        id         TEXT PRIMARY KEY,
        member     TEXT NOT NULL,
        offer      TEXT,
        reveal     TEXT,
        expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;
    `),
  // 7: snapshots (opaque sealed blobs in chunks), devices' signed acknowledgements, and compaction: a
  // compacted event keeps its row as a stub (body '', compacted 1), each writer's floor in device_heads.
  (db) =>
    db.exec(`
      ALTER TABLE events ADD COLUMN compacted INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE device_heads ADD COLUMN floor INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE snapshots (
        motebit_id     TEXT NOT NULL,
        snapshot_id    TEXT NOT NULL,
        device_id      TEXT NOT NULL,
        size           INTEGER NOT NULL,
        sha256         TEXT NOT NULL,
        chunk_bytes    INTEGER NOT NULL,
        chunks         INTEGER NOT NULL,
        covers         TEXT NOT NULL,
        touched_at     INTEGER NOT NULL,
        completed_at   INTEGER,
        complete_order INTEGER,
        PRIMARY KEY (motebit_id, snapshot_id)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX snapshots_by_order ON snapshots (motebit_id, complete_order);
      CREATE INDEX snapshots_unfinished ON snapshots (touched_at) WHERE completed_at IS NULL;
      CREATE TABLE snapshot_chunks (
        motebit_id  TEXT NOT NULL,
        snapshot_id TEXT NOT NULL,
        idx         INTEGER NOT NULL,
        data        BLOB NOT NULL,
        PRIMARY KEY (motebit_id, snapshot_id, idx)
      ) STRICT;
      CREATE TABLE acks (
        motebit_id TEXT NOT NULL,
        device_id  TEXT NOT NULL,
        covers     TEXT NOT NULL,
        at         INTEGER NOT NULL,
        sig        TEXT NOT NULL,
        PRIMARY KEY (motebit_id, device_id)
      ) STRICT, WITHOUT ROWID;
    `),
];
export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database to the current schema; refuses one made by a newer relay. Returns the versions applied. */
export function migrateSqlite(db: Database.Database): number[] {
  return db
    .transaction(() => {
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SQLITE_SCHEMA_VERSION) throw new Error(`the database's schema (version ${version}) is newer than this relay's (${SQLITE_SCHEMA_VERSION}): upgrade the relay`);
      const applied: number[] = [];
      for (let next = version + 1; next <= SQLITE_SCHEMA_VERSION; next++) {
        MIGRATIONS[next - 1]?.(db);
        applied.push(next);
      }
      db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`);
      return applied;
    })
    .immediate();
}

/** A write waiting for the next group commit. */
interface Pending<T> {
  run: () => T;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
  /** What subscribers hear of this write once it is committed: its motebit's newly stored events. */
  news?: (value: T) => { motebitId: string; events: StoredWireEvent[] };
}

/**
 * Most events one notification carries when the news of a group's appends to one motebit is merged (the
 * most one push may carry, so a merged page is never longer than a push could make it).
 */
const MAX_MERGED_EVENTS = MAX_BATCH_EVENTS;

export class SqliteStore implements RelayStore {
  /** One connection, and group commit runs writes in the order they were made (#flush). */
  readonly appendsInCallOrder = true;
  readonly #db: Database.Database;
  // Group commit: appends and nonces that arrive while the event loop is busy (with a commit's fsync, or
  // with parsing other requests) wait here and share the next transaction, so one fsync acknowledges them
  // all. Each runs in its own savepoint: one that fails is rolled back alone. An ack still means durable:
  // nobody hears of a write before the commit that holds it.
  #pending: Pending<unknown>[] = [];
  #flushScheduled = false;
  #commits = 0;
  readonly #subscribers = new Subscribers();
  readonly #stmt;
  readonly #append;
  readonly #enrol;
  readonly #revoke;
  readonly #appendMembership;
  readonly #read;
  readonly #frontier;
  readonly #begin;
  readonly #putChunk;
  readonly #completeUpload;
  readonly #discardUpload;
  readonly #pruneUploads;
  readonly #compact;

  constructor(path: string) {
    const db = new Database(path);
    this.#db = db;
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL'); // an acknowledged event survives a power cut, not only a crash
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrateSqlite(db);

    const stmt = {
      identityKey: db.prepare<[string], { identity_key: Buffer }>('SELECT identity_key FROM motebits WHERE motebit_id = ?'),
      log: db.prepare<[string], { head: number; epoch: string; stored_events: number; stored_bytes: number }>(
        'SELECT head, epoch, stored_events, stored_bytes FROM motebits WHERE motebit_id = ?',
      ),
      insertMotebit: db.prepare('INSERT INTO motebits (motebit_id, identity_key, head, created_at, epoch) VALUES (?, ?, 0, ?, ?)'),
      deviceHead: db.prepare<[string, string], { seq: number }>('SELECT seq FROM device_heads WHERE motebit_id = ? AND device_id = ?'),
      setDeviceHead: db.prepare(`INSERT INTO device_heads (motebit_id, device_id, seq) VALUES (?, ?, ?)
                                 ON CONFLICT (motebit_id, device_id) DO UPDATE SET seq = excluded.seq`),
      deviceHeads: db.prepare<[string], { device_id: string; seq: number }>('SELECT device_id, seq FROM device_heads WHERE motebit_id = ? ORDER BY device_id'),
      setUsage: db.prepare('UPDATE motebits SET head = ?, stored_events = stored_events + ?, stored_bytes = stored_bytes + ? WHERE motebit_id = ?'),
      device: db.prepare<[string, string], DeviceRow>('SELECT * FROM devices WHERE motebit_id = ? AND device_id = ?'),
      devices: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE motebit_id = ? ORDER BY enrolled_at, device_id'),
      activeDevices: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM devices WHERE motebit_id = ? AND revoked_at IS NULL'),
      insertDevice: db.prepare('INSERT INTO devices (motebit_id, device_id, key, cert, name, enrolled_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)'),
      revokeDevice: db.prepare('UPDATE devices SET revoked_at = ? WHERE motebit_id = ? AND device_id = ? AND revoked_at IS NULL'),
      seen: db.prepare(`UPDATE devices SET last_seen_at = max(coalesce(last_seen_at, 0), ?), read_seq = max(read_seq, ?)
                        WHERE motebit_id = ? AND device_id = ?`),
      membership: db.prepare<[string, number], { seq: number; hash: string; entry: string }>('SELECT seq, hash, entry FROM membership WHERE motebit_id = ? AND seq > ? ORDER BY seq'),
      membershipHead: db.prepare<[string], { seq: number | null }>('SELECT max(seq) AS seq FROM membership WHERE motebit_id = ?'),
      insertEntry: db.prepare('INSERT INTO membership (motebit_id, seq, hash, entry) VALUES (?, ?, ?, ?)'),
      insertMember: db.prepare("INSERT OR IGNORE INTO devices (motebit_id, device_id, key, cert, name, enrolled_at, revoked_at) VALUES (?, ?, ?, '', ?, ?, NULL)"),
      createPairing: db.prepare('INSERT OR IGNORE INTO pairings (id, member, offer, reveal, expires_at) VALUES (?, ?, NULL, NULL, ?)'),
      pairing: db.prepare<[string, number], { id: string; member: string; offer: string | null; reveal: string | null; expires_at: number }>('SELECT * FROM pairings WHERE id = ? AND expires_at >= ?'),
      setPairingOffer: db.prepare('UPDATE pairings SET offer = ? WHERE id = ? AND expires_at >= ? AND offer IS NULL'),
      setPairingReveal: db.prepare('UPDATE pairings SET reveal = ? WHERE id = ? AND expires_at >= ? AND offer IS NOT NULL AND reveal IS NULL'),
      prunePairings: db.prepare('DELETE FROM pairings WHERE expires_at < ?'),
      useNonce: db.prepare('INSERT OR IGNORE INTO nonces (motebit_id, signer, nonce, expires_at) VALUES (?, ?, ?, ?)'),
      pruneNonces: db.prepare('DELETE FROM nonces WHERE expires_at < ?'),
      eventAt: db.prepare<[string, number], { event_id: string }>('SELECT event_id FROM events WHERE motebit_id = ? AND seq = ?'),
      eventById: db.prepare<[string, string], { seq: number; device_id: string }>('SELECT seq, device_id FROM events WHERE motebit_id = ? AND event_id = ?'),
      insertEvent: db.prepare('INSERT INTO events (motebit_id, seq, event_id, device_id, device_seq, key_id, body) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      // Compacted stubs are never served.
      readAfter: db.prepare<[string, number, number], EventRow>(
        'SELECT seq, event_id, device_id, device_seq, key_id, body FROM events WHERE motebit_id = ? AND seq > ? AND compacted = 0 ORDER BY seq LIMIT ?',
      ),
      floors: db.prepare<[string], { device_id: string; floor: number }>('SELECT device_id, floor FROM device_heads WHERE motebit_id = ? AND floor > 0 ORDER BY device_id'),
      writers: db.prepare<[string], { device_id: string; seq: number; floor: number }>('SELECT device_id, seq, floor FROM device_heads WHERE motebit_id = ?'),
      liveUsage: db.prepare<[string, string, number], { n: number; bytes: number }>(
        'SELECT count(*) AS n, coalesce(sum(length(body)), 0) AS bytes FROM events WHERE motebit_id = ? AND device_id = ? AND device_seq <= ? AND compacted = 0',
      ),
      compactEvents: db.prepare("UPDATE events SET body = '', compacted = 1 WHERE motebit_id = ? AND device_id = ? AND device_seq <= ? AND compacted = 0"),
      setFloor: db.prepare('UPDATE device_heads SET floor = ? WHERE motebit_id = ? AND device_id = ?'),
      dropUsage: db.prepare('UPDATE motebits SET stored_events = stored_events - ?, stored_bytes = stored_bytes - ? WHERE motebit_id = ?'),
      snapshot: db.prepare<[string, string], SnapshotRow>(`SELECT ${SNAPSHOT_COLUMNS} FROM snapshots WHERE motebit_id = ? AND snapshot_id = ?`),
      latestSnapshot: db.prepare<[string], SnapshotRow>(`SELECT ${SNAPSHOT_COLUMNS} FROM snapshots WHERE motebit_id = ? AND completed_at IS NOT NULL ORDER BY complete_order DESC LIMIT 1`),
      insertSnapshot: db.prepare(
        'INSERT INTO snapshots (motebit_id, snapshot_id, device_id, size, sha256, chunk_bytes, chunks, covers, touched_at, completed_at, complete_order) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)',
      ),
      touchSnapshot: db.prepare('UPDATE snapshots SET touched_at = max(touched_at, ?) WHERE motebit_id = ? AND snapshot_id = ?'),
      unfinishedOf: db.prepare<[string, string], { snapshot_id: string }>('SELECT snapshot_id FROM snapshots WHERE motebit_id = ? AND device_id = ? AND completed_at IS NULL'),
      deleteSnapshot: db.prepare('DELETE FROM snapshots WHERE motebit_id = ? AND snapshot_id = ?'),
      deleteChunks: db.prepare('DELETE FROM snapshot_chunks WHERE motebit_id = ? AND snapshot_id = ?'),
      chunkIndexes: db.prepare<[string, string], { idx: number }>('SELECT idx FROM snapshot_chunks WHERE motebit_id = ? AND snapshot_id = ? ORDER BY idx'),
      chunkCount: db.prepare<[string, string], { n: number }>('SELECT count(*) AS n FROM snapshot_chunks WHERE motebit_id = ? AND snapshot_id = ?'),
      chunk: db.prepare<[string, string, number], { data: Buffer }>('SELECT data FROM snapshot_chunks WHERE motebit_id = ? AND snapshot_id = ? AND idx = ?'),
      chunkPage: db.prepare<[string, string, number, number], { idx: number; data: Buffer }>(
        'SELECT idx, data FROM snapshot_chunks WHERE motebit_id = ? AND snapshot_id = ? AND idx >= ? AND idx < ? ORDER BY idx',
      ),
      insertChunk: db.prepare('INSERT INTO snapshot_chunks (motebit_id, snapshot_id, idx, data) VALUES (?, ?, ?, ?)'),
      nextOrder: db.prepare<[string], { n: number }>('SELECT coalesce(max(complete_order), 0) + 1 AS n FROM snapshots WHERE motebit_id = ?'),
      completeSnapshot: db.prepare('UPDATE snapshots SET completed_at = ?, complete_order = ?, touched_at = ? WHERE motebit_id = ? AND snapshot_id = ?'),
      olderComplete: db.prepare<[string, number], { snapshot_id: string }>(
        'SELECT snapshot_id FROM snapshots WHERE motebit_id = ? AND completed_at IS NOT NULL ORDER BY complete_order DESC LIMIT -1 OFFSET ?',
      ),
      staleUploads: db.prepare<[number], { motebit_id: string; snapshot_id: string }>('SELECT motebit_id, snapshot_id FROM snapshots WHERE completed_at IS NULL AND touched_at < ?'),
      putAck: db.prepare(`INSERT INTO acks (motebit_id, device_id, covers, at, sig) VALUES (?, ?, ?, ?, ?)
                          ON CONFLICT (motebit_id, device_id) DO UPDATE SET covers = excluded.covers, at = excluded.at, sig = excluded.sig WHERE excluded.at > acks.at`),
      acks: db.prepare<[string], AckRow>('SELECT device_id, covers, at, sig FROM acks WHERE motebit_id = ? ORDER BY device_id'),
    };
    this.#stmt = stmt;

    this.#append = db.transaction((motebitId: string, events: WireEvent[], quota: AppendQuota | undefined) => {
      const log = stmt.log.get(motebitId);
      if (!log) throw new Error(`no motebit ${motebitId} on this relay`);
      const plan = planBatch({ head: log.head, events: log.stored_events, bytes: log.stored_bytes }, events, {
        existing: (eventId) => {
          const row = stmt.eventById.get(motebitId, eventId);
          return row && { seq: row.seq, deviceId: row.device_id };
        },
        writerHead: (deviceId) => stmt.deviceHead.get(motebitId, deviceId)?.seq ?? 0,
      }, quota);
      for (const event of plan.stored) stmt.insertEvent.run(motebitId, event.seq, event.event_id, event.device_id, event.device_seq, event.key_id, event.body);
      if (plan.stored.length > 0) {
        stmt.setUsage.run(plan.head, plan.stored.length, plan.bytes, motebitId);
        for (const [deviceId, seq] of plan.writerHeads) stmt.setDeviceHead.run(motebitId, deviceId, seq);
      }
      return { plan, epoch: log.epoch };
    });

    // Reads are one snapshot each, so a page's head and epoch describe the log the page came from.
    this.#read = db.transaction((motebitId: string, after: number, limit: number, maxBytes: number): ReadResult => {
      const log = stmt.log.get(motebitId);
      const page = capPage(stmt.readAfter.all(motebitId, after, limit + 1).map(toEvent), limit, maxBytes, after, log?.head ?? 0);
      return { ...page, head: log?.head ?? 0, epoch: log?.epoch ?? '' };
    });

    this.#frontier = db.transaction((motebitId: string, at: number | undefined): LogFrontier => {
      const log = stmt.log.get(motebitId);
      return {
        epoch: log?.epoch ?? '',
        head: log?.head ?? 0,
        devices: stmt.deviceHeads.all(motebitId).map((row) => ({ deviceId: row.device_id, seq: row.seq })),
        at: at === undefined ? null : { seq: at, eventId: stmt.eventAt.get(motebitId, at)?.event_id ?? null },
        floors: stmt.floors.all(motebitId).map((row) => ({ deviceId: row.device_id, seq: row.floor })),
      };
    });

    const dropUpload = (motebitId: string, snapshotId: string): void => {
      stmt.deleteChunks.run(motebitId, snapshotId);
      stmt.deleteSnapshot.run(motebitId, snapshotId);
    };
    const snapshotOf = (motebitId: string, snapshotId: string): SnapshotRecord | null => {
      const row = stmt.snapshot.get(motebitId, snapshotId);
      return row ? toSnapshot(row) : null;
    };

    this.#begin = db.transaction((motebitId: string, input: SnapshotBeginInput): SnapshotBeginOutcome => {
      const stored = snapshotOf(motebitId, input.snapshotId);
      if (stored) {
        const conflict = beginConflict(stored, input);
        if (conflict) return { kind: 'conflict', reason: conflict };
        if (stored.completedAt !== null) return { kind: 'complete', chunks: stored.chunks };
        stmt.touchSnapshot.run(input.now, motebitId, input.snapshotId);
        return { kind: 'resumed', received: stmt.chunkIndexes.all(motebitId, input.snapshotId).map((row) => row.idx) };
      }
      // One upload in progress per device: a new one replaces the unfinished one.
      for (const { snapshot_id } of stmt.unfinishedOf.all(motebitId, input.deviceId)) dropUpload(motebitId, snapshot_id);
      const upload = newUpload(input);
      stmt.insertSnapshot.run(motebitId, upload.snapshotId, upload.deviceId, upload.size, upload.sha256, upload.chunkBytes, upload.chunks, coversText(upload.covers), upload.touchedAt);
      return { kind: 'begun', received: [] };
    });

    this.#putChunk = db.transaction((motebitId: string, snapshotId: string, deviceId: string, index: number, data: Buffer, now: number): ChunkPutOutcome => {
      const record = snapshotOf(motebitId, snapshotId);
      const refusal = chunkRefusal(record, deviceId, index, data.byteLength);
      if (refusal) return refusal;
      const held = stmt.chunk.get(motebitId, snapshotId, index);
      if (held && !held.data.equals(data)) return { kind: 'conflict' };
      if (!held) {
        stmt.insertChunk.run(motebitId, snapshotId, index, data);
        stmt.touchSnapshot.run(now, motebitId, snapshotId);
      }
      return { kind: 'stored', received: stmt.chunkCount.get(motebitId, snapshotId)?.n ?? 0 };
    });

    this.#completeUpload = db.transaction((motebitId: string, snapshotId: string, deviceId: string, keep: number, now: number): SnapshotCommitOutcome => {
      const record = snapshotOf(motebitId, snapshotId);
      if (!record) return { kind: 'not_found' };
      if (record.deviceId !== deviceId) return { kind: 'other_device' };
      if (record.completedAt !== null) return { kind: 'committed', snapshot: record, pruned: 0 };
      const missing = record.chunks - (stmt.chunkCount.get(motebitId, snapshotId)?.n ?? 0);
      if (missing > 0) return { kind: 'incomplete', missing };
      stmt.completeSnapshot.run(now, stmt.nextOrder.get(motebitId)?.n ?? 1, now, motebitId, snapshotId);
      const older = stmt.olderComplete.all(motebitId, keep);
      for (const { snapshot_id } of older) dropUpload(motebitId, snapshot_id);
      return { kind: 'committed', snapshot: { ...record, completedAt: now, touchedAt: now }, pruned: older.length };
    });

    this.#discardUpload = db.transaction((motebitId: string, snapshotId: string): void => {
      const record = snapshotOf(motebitId, snapshotId);
      if (record && record.completedAt === null) dropUpload(motebitId, snapshotId);
    });

    this.#pruneUploads = db.transaction((before: number): void => {
      for (const row of stmt.staleUploads.all(before)) dropUpload(row.motebit_id, row.snapshot_id);
    });

    this.#compact = db.transaction((motebitId: string, decide: (state: CompactionState) => Map<string, number> | null): CompactionResult | null => {
      const latest = stmt.latestSnapshot.get(motebitId);
      const state: CompactionState = {
        latest: latest ? toSnapshot(latest) : null,
        devices: stmt.devices.all(motebitId).map(toDevice),
        acks: stmt.acks.all(motebitId).map(toAck),
        writers: new Map(stmt.writers.all(motebitId).map((row) => [row.device_id, { head: row.seq, floor: row.floor }])),
      };
      const floors = decide(state);
      if (!floors || floors.size === 0) return null;
      let events = 0;
      let bytes = 0;
      for (const [deviceId, floor] of floors) {
        const dropped = stmt.liveUsage.get(motebitId, deviceId, floor);
        events += dropped?.n ?? 0;
        bytes += dropped?.bytes ?? 0;
        stmt.compactEvents.run(motebitId, deviceId, floor);
        stmt.setFloor.run(floor, motebitId, deviceId);
      }
      stmt.dropUsage.run(events, bytes, motebitId);
      return { events, bytes, floors };
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
      if (input.maxDevices !== undefined && (stmt.activeDevices.get(input.motebitId)?.n ?? 0) >= input.maxDevices) return { kind: 'quota_exceeded' };
      stmt.insertDevice.run(input.motebitId, input.deviceId, input.deviceKey, input.cert, input.name, input.now);
      const row = stmt.device.get(input.motebitId, input.deviceId);
      if (!row) throw new Error('device row vanished inside its own transaction');
      return { kind: 'created', device: toDevice(row) };
    });

    this.#appendMembership = db.transaction((motebitId: string, append: MembershipAppend): { kind: 'appended' | 'conflict'; head: number; revoked: string[] } => {
      const head = stmt.membershipHead.get(motebitId)?.seq ?? -1;
      const first = append.entries[0];
      if (!first || first.seq !== head + 1) return { kind: 'conflict', head, revoked: [] };
      // A genesis registers a new motebit (no identity key: its members' keys are in the log); an upgraded
      // protocol-2 motebit keeps its row.
      if (first.seq === 0 && !stmt.identityKey.get(motebitId)) stmt.insertMotebit.run(motebitId, Buffer.alloc(0), append.now, newLogEpoch());
      for (const entry of append.entries) stmt.insertEntry.run(motebitId, entry.seq, entry.hash, entry.text);
      for (const device of append.added) stmt.insertMember.run(motebitId, device.deviceId, device.key, device.name, append.now);
      const revoked = append.removed.filter((deviceId) => stmt.revokeDevice.run(append.now, motebitId, deviceId).changes === 1);
      return { kind: 'appended', head: append.entries.at(-1)!.seq, revoked };
    });

    this.#revoke = db.transaction((motebitId: string, deviceId: string, now: number): RevokeOutcome => {
      const existing = stmt.device.get(motebitId, deviceId);
      if (!existing) return { kind: 'unknown' };
      if (existing.revoked_at !== null) return { kind: 'already_revoked', device: toDevice(existing) };
      stmt.revokeDevice.run(now, motebitId, deviceId);
      return { kind: 'revoked', device: { ...toDevice(existing), revokedAt: now } };
    });
  }

  async membership(motebitId: string, after: number): Promise<StoredEntry[]> {
    return this.#stmt.membership.all(motebitId, after).map((row) => ({ seq: row.seq, hash: row.hash, text: row.entry }));
  }

  async appendMembership(motebitId: string, append: MembershipAppend): Promise<MembershipAppendOutcome> {
    const outcome = this.#appendMembership.immediate(motebitId, append);
    if (outcome.kind === 'appended') for (const deviceId of outcome.revoked) this.#subscribers.notify(motebitId, { kind: 'revoked', deviceId });
    return { kind: outcome.kind, head: outcome.head };
  }

  async createPairing(id: string, member: string, expiresAt: number): Promise<boolean> {
    return this.#stmt.createPairing.run(id, member, expiresAt).changes === 1;
  }

  async pairing(id: string, now: number): Promise<PairingRecord | null> {
    const row = this.#stmt.pairing.get(id, now);
    return row ? { id: row.id, member: row.member, offer: row.offer, reveal: row.reveal, expiresAt: row.expires_at } : null;
  }

  async setPairingOffer(id: string, offer: string, now: number): Promise<boolean> {
    return this.#stmt.setPairingOffer.run(offer, id, now).changes === 1;
  }

  async setPairingReveal(id: string, reveal: string, now: number): Promise<boolean> {
    return this.#stmt.setPairingReveal.run(reveal, id, now).changes === 1;
  }

  async prunePairings(now: number): Promise<void> {
    this.#stmt.prunePairings.run(now);
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
    if (outcome.kind === 'revoked') this.#subscribers.notify(motebitId, { kind: 'revoked', deviceId });
    return outcome;
  }

  async recordSeen(motebitId: string, sightings: readonly Sighting[]): Promise<void> {
    if (sightings.length === 0) return;
    // Joins the next group commit: no fsync of its own.
    await this.#grouped(() => {
      for (const s of sightings) this.#stmt.seen.run(s.at, s.readSeq ?? 0, motebitId, s.deviceId);
    });
  }

  async useNonce(motebitId: string, signer: string, nonce: string, expiresAt: number): Promise<boolean> {
    return this.#grouped(() => this.#stmt.useNonce.run(motebitId, signer, nonce, expiresAt).changes === 1);
  }

  /** The connection's durability settings, as SQLite reports them (the durability contract: WAL, synchronous FULL). */
  get durability(): { journalMode: string; synchronous: number } {
    return { journalMode: this.#db.pragma('journal_mode', { simple: true }) as string, synchronous: this.#db.pragma('synchronous', { simple: true }) as number };
  }

  /** Transactions committed by group commit so far (each one fsync); for tests and metrics. */
  get groupCommits(): number {
    return this.#commits;
  }

  #grouped<T>(run: () => T, news?: Pending<T>['news']): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ run, resolve, reject, news } as Pending<unknown>);
      if (this.#flushScheduled) return;
      this.#flushScheduled = true;
      // After the I/O of this turn of the event loop: every request that arrived meanwhile joins the group.
      setImmediate(() => this.#flush());
    });
  }

  #flush(): void {
    this.#flushScheduled = false;
    const group = this.#pending;
    this.#pending = [];
    if (group.length === 0) return;
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      if (!this.#db.open) throw new Error('the relay store is closed');
      this.#db
        .transaction(() => {
          for (const write of group) {
            try {
              outcomes.push({ ok: true, value: this.#db.transaction(write.run)() }); // nested: a savepoint
            } catch (error) {
              outcomes.push({ ok: false, error });
            }
          }
        })
        .immediate();
      this.#commits++;
    } catch (error) {
      for (const write of group) write.reject(error); // the commit failed: nothing of the group is durable
      return;
    }
    this.#tellSubscribers(group, outcomes);
    group.forEach((write, i) => {
      const outcome = outcomes[i];
      if (outcome?.ok) write.resolve(outcome.value);
      else write.reject(outcome?.error);
    });
  }

  /**
   * After a group's commit, before any of its writers hears back (so an ack still follows the fan-out):
   * the events each motebit gained, merged across the group's appends in commit order, in notifications of
   * at most MAX_MERGED_EVENTS. A device whose pushes are pipelined (relay/ws.ts) has its receivers get one
   * message, one write per socket, for all the batches of a group instead of one per batch.
   */
  #tellSubscribers(group: readonly Pending<unknown>[], outcomes: readonly ({ ok: true; value: unknown } | { ok: false; error: unknown })[]): void {
    const news = new Map<string, StoredWireEvent[][]>();
    group.forEach((write, i) => {
      const outcome = outcomes[i];
      if (!write.news || !outcome?.ok) return;
      const told = write.news(outcome.value);
      if (told.events.length === 0) return;
      let pages = news.get(told.motebitId);
      if (!pages) news.set(told.motebitId, (pages = [[]]));
      for (const event of told.events) {
        if (pages.at(-1)!.length >= MAX_MERGED_EVENTS) pages.push([]);
        pages.at(-1)!.push(event);
      }
    });
    for (const [motebitId, pages] of news) for (const events of pages) this.#subscribers.notify(motebitId, { kind: 'events', events });
  }

  async pruneNonces(now: number): Promise<void> {
    this.#stmt.pruneNonces.run(now);
  }

  async appendBatch(motebitId: string, events: WireEvent[], quota?: AppendQuota): Promise<AppendResult> {
    const { plan, epoch } = await this.#grouped(
      () => this.#append(motebitId, events, quota),
      ({ plan }) => ({ motebitId, events: plan.stored }),
    );
    return { results: plan.results, head: plan.head, epoch, ...(plan.refused ? { refused: plan.refused } : {}) };
  }

  async readAfter(motebitId: string, after: number, limit: number, maxBytes: number): Promise<ReadResult> {
    return this.#read.deferred(motebitId, after, limit, maxBytes);
  }

  async head(motebitId: string): Promise<number> {
    return this.#stmt.log.get(motebitId)?.head ?? 0;
  }

  async usage(motebitId: string): Promise<Usage> {
    const log = this.#stmt.log.get(motebitId);
    return { events: log?.stored_events ?? 0, bytes: log?.stored_bytes ?? 0, devices: this.#stmt.activeDevices.get(motebitId)?.n ?? 0 };
  }

  async frontier(motebitId: string, at?: number): Promise<LogFrontier> {
    return this.#frontier.deferred(motebitId, at);
  }

  subscribe(motebitId: string, listener: (notification: Notification) => void): () => void {
    return this.#subscribers.add(motebitId, listener);
  }

  async beginSnapshot(motebitId: string, input: SnapshotBeginInput): Promise<SnapshotBeginOutcome> {
    return this.#begin.immediate(motebitId, input);
  }

  async putSnapshotChunk(motebitId: string, snapshotId: string, deviceId: string, index: number, data: Buffer, now: number): Promise<ChunkPutOutcome> {
    return this.#putChunk.immediate(motebitId, snapshotId, deviceId, index, data, now);
  }

  async commitSnapshot(motebitId: string, snapshotId: string, deviceId: string, keep: number, now: number): Promise<SnapshotCommitOutcome> {
    const record = this.#stmt.snapshot.get(motebitId, snapshotId);
    if (record && record.completed_at === null && record.device_id === deviceId && this.#stmt.chunkCount.get(motebitId, snapshotId)?.n === record.chunks) {
      // Hashed a page at a time outside any transaction (chunks never change once stored; the commit below
      // checks the upload is still whole), letting other requests run between pages, so a large snapshot
      // holds neither the database nor the event loop.
      const hash = await hashChunks(record.chunks, async (from, count) => {
        await new Promise((resolve) => setImmediate(resolve));
        return this.#stmt.chunkPage.all(motebitId, snapshotId, from, from + count);
      });
      if (hash !== null && hash !== record.sha256) {
        this.#discardUpload.immediate(motebitId, snapshotId);
        return { kind: 'mismatch' };
      }
    }
    return this.#completeUpload.immediate(motebitId, snapshotId, deviceId, keep, now);
  }

  async latestSnapshot(motebitId: string): Promise<SnapshotRecord | null> {
    const row = this.#stmt.latestSnapshot.get(motebitId);
    return row ? toSnapshot(row) : null;
  }

  async snapshotChunk(motebitId: string, snapshotId: string, index: number): Promise<Buffer | null> {
    const row = this.#stmt.snapshot.get(motebitId, snapshotId);
    if (!row || row.completed_at === null || index >= row.chunks) return null;
    return this.#stmt.chunk.get(motebitId, snapshotId, index)?.data ?? null;
  }

  async pruneSnapshotUploads(before: number): Promise<void> {
    this.#pruneUploads.immediate(before);
  }

  async putAck(motebitId: string, ack: AckRecord): Promise<boolean> {
    return this.#stmt.putAck.run(motebitId, ack.deviceId, coversText(ack.covers), ack.at, ack.sig).changes === 1;
  }

  async acks(motebitId: string): Promise<AckRecord[]> {
    return this.#stmt.acks.all(motebitId).map(toAck);
  }

  async compact(motebitId: string, decide: (state: CompactionState) => Map<string, number> | null): Promise<CompactionResult | null> {
    return this.#compact.immediate(motebitId, decide);
  }

  async close(): Promise<void> {
    this.#subscribers.clear();
    if (!this.#db.open) return;
    if (this.#pending.length > 0) this.#flush(); // what was accepted is committed before the file closes
    this.#db.pragma('wal_checkpoint(TRUNCATE)');
    this.#db.close();
  }
}
