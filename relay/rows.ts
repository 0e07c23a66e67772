// Rows as both stores keep them (the same columns in SQLite and PostgreSQL), and the records they make.
import type { StoredWireEvent } from '../shared/wire.ts';
import type { DeviceRecord } from './store.ts';

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
