// Rows as both stores keep them (the same columns in SQLite and PostgreSQL), and the records they make.
import type { StoredWireEvent } from '../shared/portable/wire.ts';
import type { AckRecord, DeviceRecord, SnapshotRecord } from './store.ts';

export interface DeviceRow {
  motebit_id: string;
  device_id: string;
  key: Buffer;
  cert: string;
  name: string | null;
  enrolled_at: number;
  revoked_at: number | null;
  last_seen_at: number | null;
  read_seq: number;
}

export interface EventRow {
  seq: number;
  event_id: string;
  device_id: string;
  device_seq: number;
  key_id: string | null;
  body: string;
}

export const toDevice = (row: DeviceRow): DeviceRecord => ({
  motebitId: row.motebit_id,
  deviceId: row.device_id,
  key: row.key,
  cert: row.cert,
  name: row.name,
  enrolledAt: row.enrolled_at,
  revokedAt: row.revoked_at,
  lastSeenAt: row.last_seen_at === null ? null : Number(row.last_seen_at),
  readSeq: Number(row.read_seq),
});

export const toEvent = (row: EventRow): StoredWireEvent => ({
  event_id: row.event_id,
  device_id: row.device_id,
  device_seq: row.device_seq,
  key_id: row.key_id,
  body: row.body,
  seq: row.seq,
});

export interface SnapshotRow {
  snapshot_id: string;
  device_id: string;
  size: number;
  sha256: string;
  chunk_bytes: number;
  chunks: number;
  /** Canonical JSON of the version vector. */
  covers: string;
  touched_at: number;
  completed_at: number | null;
}

/** The columns a SnapshotRow is read from (the same on both stores). */
export const SNAPSHOT_COLUMNS = 'snapshot_id, device_id, size, sha256, chunk_bytes, chunks, covers, touched_at, completed_at';

export const toSnapshot = (row: SnapshotRow): SnapshotRecord => ({
  snapshotId: row.snapshot_id,
  deviceId: row.device_id,
  size: Number(row.size),
  sha256: row.sha256,
  chunkBytes: Number(row.chunk_bytes),
  chunks: Number(row.chunks),
  covers: JSON.parse(row.covers) as Record<string, number>,
  touchedAt: Number(row.touched_at),
  completedAt: row.completed_at === null ? null : Number(row.completed_at),
});

export interface AckRow {
  device_id: string;
  covers: string;
  at: number;
  sig: string;
}

export const toAck = (row: AckRow): AckRecord => ({ deviceId: row.device_id, covers: JSON.parse(row.covers) as Record<string, number>, at: Number(row.at), sig: row.sig });
