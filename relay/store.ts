// The one seam between the relay's HTTP/WebSocket code and where events live. Everything is async so a
// PostgreSQL backend (rows + LISTEN/NOTIFY for fan-out) can implement it without touching the server.
// Every key is scoped by motebit: nothing of one motebit can collide with or overwrite another's.
import type { PushResult, QuotaName } from '../shared/portable/relay-api.ts';
import type { StoredWireEvent, WireEvent } from '../shared/portable/wire.ts';

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
  /** Unix ms the device was last seen (an authenticated request or socket), or null when never. */
  lastSeenAt: number | null;
  /** How far the device has read the log: the highest seq it was sent or said it holds (0 when none). */
  readSeq: number;
}

/** A device seen: when, and how far it has read (null when the sighting says nothing about that). */
export interface Sighting {
  deviceId: string;
  at: number;
  readSeq: number | null;
}

/** One membership log entry as stored (docs/keys.md): its seq, hash and JSON text, checked before it is stored. */
export interface StoredEntry {
  seq: number;
  hash: string;
  text: string;
}

/** Entries to append to a motebit's membership log, and what they change among its devices. */
export interface MembershipAppend {
  /** Consecutive, starting right after the stored head (at 0, a genesis, for a log not started yet). */
  entries: StoredEntry[];
  /** Devices the entries make members: each gets a device row (no certificate), so tokens, sockets and the device list work as for any device. */
  added: { deviceId: string; key: Buffer; name: string | null }[];
  /** Devices the entries remove: revoked at `now` (their sockets are closed, their tokens refused). */
  removed: string[];
  now: number;
}

/** A pairing rendezvous (docs/keys.md): what a new device and a member exchange through the relay, as JSON text. */
export interface PairingRecord {
  id: string;
  /** The new device's public keys and name. */
  member: string;
  /** The member's commitment to the motebit (its id and genesis hash), once posted. */
  offer: string | null;
  /** The new device's nonce, revealed after the offer. */
  reveal: string | null;
  /** Unix s. */
  expiresAt: number;
}

/** `conflict`: the log's head is not where the append starts (another append got there first); nothing was stored. */
export type MembershipAppendOutcome = { kind: 'appended' | 'conflict'; head: number };

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
  /**
   * The cursor to resume after: the last seq returned, or, when nothing more is left, the head (past any
   * compacted stubs at the end, which no page returns); never below `after`.
   */
  next: number;
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
  /** When asked: the event id at that seq (null when there is none). A compacted event keeps its id. */
  at: { seq: number; eventId: string | null } | null;
  /** Each writer's compacted-through device_seq, for writers with any compacted event (empty when none). */
  floors: { deviceId: string; seq: number }[];
}

/** A version vector: { device_id: highest device_seq }. */
export type Covers = Record<string, number>;

/** A snapshot upload, or a complete snapshot, as stored (its chunks are rows of their own). */
export interface SnapshotRecord {
  snapshotId: string;
  /** The device that began the upload (who made the snapshot). */
  deviceId: string;
  size: number;
  sha256: string;
  chunkBytes: number;
  chunks: number;
  covers: Covers;
  /** Unix ms of the begin or the latest chunk stored (unfinished uploads are forgotten after a while). */
  touchedAt: number;
  /** Unix ms it became complete (its commit), or null while it is an upload. */
  completedAt: number | null;
}

/** What a device declares when it begins an upload. */
export interface SnapshotBeginInput {
  snapshotId: string;
  deviceId: string;
  size: number;
  sha256: string;
  chunkBytes: number;
  covers: Covers;
  now: number;
}

export type SnapshotBeginOutcome =
  /** A new upload (the device's unfinished one, if any, was dropped), or the same upload again: `received` are the chunks held, sorted. */
  | { kind: 'begun' | 'resumed'; received: number[] }
  /** The snapshot is complete already. */
  | { kind: 'complete'; chunks: number }
  /** The id is another device's upload, or was begun with other fields. */
  | { kind: 'conflict'; reason: 'other_device' | 'other_fields' };

export type ChunkPutOutcome =
  /** Stored now, or held already with the same bytes; `received`: how many chunks the upload holds. */
  | { kind: 'stored'; received: number }
  | { kind: 'not_found' }
  | { kind: 'other_device' }
  | { kind: 'out_of_range'; chunks: number }
  | { kind: 'wrong_length'; expected: number }
  /** The chunk is held already with other bytes. */
  | { kind: 'conflict' };

export type SnapshotCommitOutcome =
  /** Complete now (`pruned`: older complete snapshots dropped), or it already was (pruned 0). */
  | { kind: 'committed'; snapshot: SnapshotRecord; pruned: number }
  | { kind: 'not_found' }
  | { kind: 'other_device' }
  | { kind: 'incomplete'; missing: number }
  /** The chunks' SHA-256 is not the declared one: the upload was discarded. */
  | { kind: 'mismatch' };

/** A device's newest signed acknowledgement, as received (shared/ack.ts). */
export interface AckRecord {
  deviceId: string;
  covers: Covers;
  /** Unix ms, the device's own clock. */
  at: number;
  sig: string;
}

/** What a compaction decision reads, in the transaction that then drops what it decides. */
export interface CompactionState {
  /** The newest complete snapshot, or null. */
  latest: SnapshotRecord | null;
  devices: DeviceRecord[];
  acks: AckRecord[];
  /** Each writer's highest stored device_seq and its compacted-through device_seq (0: none). */
  writers: Map<string, { head: number; floor: number }>;
}

/** What a compaction dropped: event bodies made stubs, their bytes, and each writer's new floor. */
export interface CompactionResult {
  events: number;
  bytes: number;
  floors: Map<string, number>;
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
  /**
   * Records sightings of the motebit's devices: each device's last-seen time and read position only ever
   * move forward (an older or lower value changes nothing). Callers batch them (relay/presence.ts), so
   * this is not a write per request.
   */
  recordSeen(motebitId: string, sightings: readonly Sighting[]): Promise<void>;

  /** The motebit's membership log entries with seq > after (after = -1: all), in order. */
  membership(motebitId: string, after: number): Promise<StoredEntry[]>;
  /**
   * Appends checked entries in one transaction, with their device rows and revocations; a genesis also
   * registers the motebit when it is new (an upgraded protocol-2 motebit keeps its row). Subscribers hear
   * each revocation. Concurrent appends: exactly one wins, the others get `conflict`.
   */
  appendMembership(motebitId: string, append: MembershipAppend): Promise<MembershipAppendOutcome>;

  /** Opens a pairing rendezvous until `expiresAt` (Unix s); false when the id is taken. */
  createPairing(id: string, member: string, expiresAt: number): Promise<boolean>;
  /** The rendezvous, or null when there is none or it expired before `now` (Unix s). */
  pairing(id: string, now: number): Promise<PairingRecord | null>;
  /** Sets the offer once (false: no such rendezvous, expired, or it has one). */
  setPairingOffer(id: string, offer: string, now: number): Promise<boolean>;
  /** Sets the reveal once, after the offer (false otherwise). */
  setPairingReveal(id: string, reveal: string, now: number): Promise<boolean>;
  /** Forgets rendezvous that expired before `now` (Unix s). */
  prunePairings(now: number): Promise<void>;

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
  /**
   * True when appendBatch calls made one after another, without waiting for the first to settle, are
   * applied in the order they were made (and settle in it). A WebSocket then starts a device's next push
   * while the previous one commits (relay/ws.ts); otherwise it waits, so a writer's batches never land
   * out of order (which the gap rule would refuse).
   */
  readonly appendsInCallOrder: boolean;
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

  // ---- Snapshots, acknowledgements, compaction (docs/protocol.md §7, "Snapshots and compaction") ----
  // The relay never reads a snapshot: size, hash and chunk lengths are all it checks (relay/snapshot-rule.ts).

  /** Begins an upload by its device, or resumes the same one; a new begin drops the device's other unfinished upload. */
  beginSnapshot(motebitId: string, input: SnapshotBeginInput): Promise<SnapshotBeginOutcome>;
  /** Stores one chunk of the device's upload (idempotent for the same bytes). */
  putSnapshotChunk(motebitId: string, snapshotId: string, deviceId: string, index: number, data: Buffer, now: number): Promise<ChunkPutOutcome>;
  /**
   * Completes the device's upload when every chunk is there and their SHA-256 is the declared one (else
   * it is discarded); the complete snapshot becomes the latest, and only the `keep` newest complete ones
   * stay, with their chunks. Committing a complete snapshot again answers it.
   */
  commitSnapshot(motebitId: string, snapshotId: string, deviceId: string, keep: number, now: number): Promise<SnapshotCommitOutcome>;
  /** The newest complete snapshot (by commit order), or null. */
  latestSnapshot(motebitId: string): Promise<SnapshotRecord | null>;
  /** A chunk of a complete snapshot; null for an upload, an unknown snapshot or an index past its end. */
  snapshotChunk(motebitId: string, snapshotId: string, index: number): Promise<Buffer | null>;
  /** Forgets unfinished uploads (and their chunks) last touched before `before` (Unix ms), of every motebit. */
  pruneSnapshotUploads(before: number): Promise<void>;
  /** Keeps a device's acknowledgement if it is newer (a higher `at`) than the one held; true when kept. */
  putAck(motebitId: string, ack: AckRecord): Promise<boolean>;
  /** Each device's newest acknowledgement (revoked devices' too; callers pick the live ones). */
  acks(motebitId: string): Promise<AckRecord[]>;
  /**
   * In one transaction: reads the state, asks `decide` for each writer's new floor (null: nothing to do),
   * and makes every event of a writer with device_seq up to its floor a stub (body dropped; its id, seq
   * and device_seq stay, so pushes, the frontier and the append rule see it as before). Usage drops by
   * what was dropped. Null when nothing was dropped.
   */
  compact(motebitId: string, decide: (state: CompactionState) => Map<string, number> | null): Promise<CompactionResult | null>;

  close(): Promise<void>;
}

/**
 * A pull page from `rows` (events that are not stubs, read with limit + 1, after `after`, in the snapshot
 * whose head is `head`): at most `limit` events and about `maxBytes`, always at least one; `more` when
 * anything was left out; `next` the last seq returned, or the head when nothing is left (what lies between
 * is compacted stubs, which no page returns), never below `after`.
 */
export function capPage(rows: StoredWireEvent[], limit: number, maxBytes: number, after: number, head: number): { events: StoredWireEvent[]; more: boolean; next: number } {
  const events: StoredWireEvent[] = [];
  let bytes = 0;
  for (const row of rows.slice(0, limit)) {
    const size = row.body.length + EVENT_OVERHEAD_BYTES;
    if (events.length > 0 && bytes + size > maxBytes) break;
    bytes += size;
    events.push(row);
  }
  const more = rows.length > events.length;
  const last = events.at(-1)?.seq ?? after;
  return { events, more, next: more ? last : Math.max(last, head, after) };
}
