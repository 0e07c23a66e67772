// The one seam between the relay's HTTP/WebSocket code and where events live. Everything is async so a
// PostgreSQL backend (rows + LISTEN/NOTIFY for fan-out) can implement it without touching the server.
// Every key is scoped by motebit: nothing of one motebit can collide with or overwrite another's.
import type { PushResult, QuotaName } from '../shared/relay-api.ts';
import type { StoredWireEvent, WireEvent } from '../shared/wire.ts';

export interface DeviceRecord {
  motebitId: string;
  deviceId: string;
  /** Raw 32-byte Ed25519 public key. */
  key: Buffer;
  /** base64url identity signature (certifyDevice). */
  cert: string;
  name: string | null;
  enrolledAt: number;
  revokedAt: number | null;
}

export interface EnrolInput {
  motebitId: string;
  identityKey: Buffer;
  deviceId: string;
  deviceKey: Buffer;
  cert: string;
  name: string | null;
  now: number;
  /** Most devices not revoked the motebit may have; beyond it the outcome is quota_exceeded. */
  maxDevices?: number;
}

export type EnrolOutcome =
  | { kind: 'created'; device: DeviceRecord }
  | { kind: 'exists'; device: DeviceRecord }
  /** The motebit is registered under another identity key. */
  | { kind: 'wrong_identity' }
  /** The device id is taken by another key (cannot happen with derived ids, checked anyway). */
  | { kind: 'key_mismatch' }
  /** The device was revoked: it can never come back. */
  | { kind: 'revoked' }
  /** A new device would go over the motebit's device quota. */
  | { kind: 'quota_exceeded' };

export type RevokeOutcome = { kind: 'revoked' | 'already_revoked'; device: DeviceRecord } | { kind: 'unknown' };

export interface ReadResult {
  events: StoredWireEvent[];
  /** Whether more events exist after the last one returned. */
  more: boolean;
  /** The log's highest seq and its epoch, read with the page. */
  head: number;
  epoch: string;
}

export interface AppendResult {
  results: PushResult[];
  /** The log's highest seq after the batch, and its epoch. */
  head: number;
  epoch: string;
  /** Set when the batch would have gone over a quota: nothing of it was stored, `results` is empty. */
  refused?: QuotaName;
}

/** What one motebit may store; checked inside the append, so concurrent pushes cannot overshoot it. */
export interface AppendQuota {
  maxEvents: number;
  /** Sum of stored event bodies' lengths. */
  maxBytes: number;
}

/** What a motebit uses: stored events and body bytes, devices not revoked. */
export interface Usage {
  events: number;
  bytes: number;
  devices: number;
}

/** Envelope bytes counted per event on top of its body when capping a page. */
export const EVENT_OVERHEAD_BYTES = 200;

/** What the log holds, per writer: each device's highest stored device_seq (stored gap-free from 1). */
export interface LogFrontier {
  epoch: string;
  head: number;
  devices: { deviceId: string; seq: number }[];
  /** When asked: the event id at that seq (null when there is none). */
  at: { seq: number; eventId: string | null } | null;
}

/**
 * What a subscriber hears about a motebit: events just stored, a device just revoked, or `missed`: news
 * may have been lost (e.g. a notification channel was down), so catch up from storage. Events may come
 * out of order or twice across instances; a subscriber orders them by seq.
 */
export type Notification = { kind: 'events'; events: StoredWireEvent[] } | { kind: 'revoked'; deviceId: string } | { kind: 'missed' };
export type { QuotaName };

export interface RelayStore {
  /** The identity public key the motebit was registered with, or null. */
  identityKey(motebitId: string): Promise<Buffer | null>;
  /** Registers the identity on first enrolment, then the device; atomic. Never undoes a revocation. */
  enrolDevice(input: EnrolInput): Promise<EnrolOutcome>;
  device(motebitId: string, deviceId: string): Promise<DeviceRecord | null>;
  devices(motebitId: string): Promise<DeviceRecord[]>;
  revokeDevice(motebitId: string, deviceId: string, now: number): Promise<RevokeOutcome>;

  /** Records a token nonce until `expiresAt` (Unix s); false when it was already used. */
  useNonce(motebitId: string, signer: string, nonce: string, expiresAt: number): Promise<boolean>;
  /** Forgets nonces that expired before `now` (Unix s). */
  pruneNonces(now: number): Promise<void>;

  /**
   * Appends a batch in one transaction, idempotently by event id: an event already in the log is a
   * duplicate and keeps its first version and sequence. The events may be of any device of the motebit
   * (a member re-seeds a relay with other devices' sealed events); each writer's events are stored
   * gap-free: a device_seq at or below the writer's head is `device_seq_conflict`, one beyond head + 1 is
   * `device_seq_gap`. Subscribers are notified of what was stored.
   */
  appendBatch(motebitId: string, events: WireEvent[], quota?: AppendQuota): Promise<AppendResult>;
  /** Events with seq > after, in seq order, at most `limit` and about `maxBytes` (always at least one). */
  readAfter(motebitId: string, after: number, limit: number, maxBytes: number): Promise<ReadResult>;
  /** The motebit's highest seq (0 when empty). */
  head(motebitId: string): Promise<number>;
  /** What the motebit uses now (zeros for an unknown motebit). */
  usage(motebitId: string): Promise<Usage>;
  /** The log's epoch, head, every writer's highest stored device_seq and (given `at`) the event at that seq, from one snapshot. */
  frontier(motebitId: string, at?: number): Promise<LogFrontier>;
  /** Hears every notification of the motebit until the returned function is called. */
  subscribe(motebitId: string, listener: (notification: Notification) => void): () => void;

  close(): Promise<void>;
}

/**
 * A pull page from `rows` (read with limit + 1): at most `limit` events and about `maxBytes`, always at
 * least one; `more` when anything was left out.
 */
export function capPage(rows: StoredWireEvent[], limit: number, maxBytes: number): { events: StoredWireEvent[]; more: boolean } {
  const events: StoredWireEvent[] = [];
  let bytes = 0;
  for (const row of rows.slice(0, limit)) {
    const size = row.body.length + EVENT_OVERHEAD_BYTES;
    if (events.length > 0 && bytes + size > maxBytes) break;
    bytes += size;
    events.push(row);
  }
  return { events, more: rows.length > events.length };
}
