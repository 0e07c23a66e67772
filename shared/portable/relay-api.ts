// The relay protocol v1 (docs/protocol.md §7): every request and response body and every WebSocket
// message, as zod schemas shared by the relay and the devices, plus the error codes and close codes.
import { z } from 'zod';
import { base64UrlPattern, isCanonicalBase64Url } from './base64url.ts';
import { DeviceIdSchema, EventIdSchema, LogEpochSchema, MotebitIdSchema, SnapshotIdSchema } from './ids.ts';
import { StoredWireEventSchema, WireEventSchema } from './wire.ts';

export const RELAY_PROTOCOL = 'v1';
/**
 * Additive revisions of v1 (docs/protocol.md, "Revisions"). 2: log epochs and heads on every pull, push and
 * ready; the frontier endpoint; members may push other devices' sealed events; writers stored gap-free.
 * 5: the 'limits' message before 'ready' (how many pushes a socket may leave unanswered).
 */
export const RELAY_REVISION = 5;
/**
 * The oldest relay revision a device of this version works with: 3 (membership logs). Revision 4 adds
 * snapshots, acknowledgements and compaction; a device finds none of them at a revision-3 relay (404) and
 * syncs without them. A relay that claims revision 4 or later and answers 404 there fails the cycle: it
 * would otherwise keep no snapshot and compact nothing, unseen.
 */
export const MIN_RELAY_REVISION = 3;
/** The revision that added snapshots, acknowledgements and compaction: a relay at it or above has their routes. */
export const SNAPSHOT_REVISION = 4;

// ---- Limits (defaults; a relay may be configured lower, never higher than the schemas allow) ----
export const MAX_BATCH_EVENTS = 256;
export const MAX_PULL_LIMIT = 1000;
export const DEFAULT_PULL_LIMIT = 100;
export const MAX_DEVICE_NAME_LENGTH = 128;

// ---- Errors ----

/** Why a token was refused. Each is counted in metrics. */
export const AUTH_FAILURE_REASONS = [
  'malformed_token',
  'bad_signature',
  'unknown_device',
  'revoked_device',
  'token_expired',
  'token_not_yet_valid',
  'wrong_audience',
  'replayed_nonce',
  'wrong_motebit',
  'body_mismatch',
] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

export const ERROR_CODES = [
  ...AUTH_FAILURE_REASONS,
  'bad_request',
  'invalid_json',
  'unsupported_media_type',
  'payload_too_large',
  'too_many_events',
  'not_found',
  'method_not_allowed',
  'rate_limited',
  'bad_cert',
  'wrong_identity',
  'device_revoked',
  'device_key_mismatch',
  'quota_exceeded',
  'membership_refused',
  'membership_conflict',
  'snapshot_conflict',
  'snapshot_incomplete',
  'snapshot_mismatch',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** HTTP status of each error code. */
export const ERROR_STATUS: Record<ErrorCode, number> = {
  malformed_token: 401,
  bad_signature: 401,
  unknown_device: 401,
  revoked_device: 403,
  token_expired: 401,
  token_not_yet_valid: 401,
  wrong_audience: 401,
  replayed_nonce: 401,
  wrong_motebit: 403,
  body_mismatch: 401,
  bad_request: 400,
  invalid_json: 400,
  unsupported_media_type: 415,
  payload_too_large: 413,
  too_many_events: 413,
  not_found: 404,
  method_not_allowed: 405,
  rate_limited: 429,
  bad_cert: 400,
  wrong_identity: 403,
  device_revoked: 409,
  device_key_mismatch: 409,
  quota_exceeded: 403,
  membership_refused: 400,
  membership_conflict: 409,
  snapshot_conflict: 409,
  snapshot_incomplete: 400,
  snapshot_mismatch: 400,
  internal: 500,
};

/** What a motebit may use of a relay; a refusal names the one it would exceed. */
export const QUOTA_NAMES = ['stored_events', 'stored_bytes', 'devices', 'sockets', 'snapshot_bytes'] as const;
export type QuotaName = (typeof QUOTA_NAMES)[number];

// Read leniently, like every response, so a later revision may add fields.
export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.enum(ERROR_CODES),
    /** With quota_exceeded: which quota. */
    quota: z.enum(QUOTA_NAMES).optional(),
    message: z.string(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

// ---- Devices ----

const PublicKeySchema = z.string().regex(base64UrlPattern(32), 'a public key is 32 bytes of base64url');
const SignatureSchema = z.string().regex(base64UrlPattern(64), 'a signature is 64 bytes of base64url');

/** POST /v1/motebits/:motebitId/devices, signed by the identity key. */
export const EnrolRequestSchema = z.strictObject({
  /** The motebit identity public key; the motebit id must be derived from it. */
  identity_key: PublicKeySchema,
  /** The device's Ed25519 public key; the device id is derived from it. */
  device_key: PublicKeySchema,
  /** certifyDevice(identity, motebitId, deviceKey) */
  cert: SignatureSchema,
  name: z.string().min(1).max(MAX_DEVICE_NAME_LENGTH).regex(/^\P{Cc}+$/u, 'a device name has no control characters').optional(),
});
export type EnrolRequest = z.infer<typeof EnrolRequestSchema>;

export const DeviceInfoSchema = z.strictObject({
  device_id: DeviceIdSchema,
  key: PublicKeySchema,
  /** Protocol 2: the identity's certificate of the device key. Absent for a member of a membership log (its log entry admits it). */
  cert: SignatureSchema.optional(),
  name: z.string().optional(),
  /** Unix milliseconds. */
  enrolled_at: z.int().min(0),
  revoked_at: z.int().min(0).nullable(),
  /** Unix milliseconds the relay last saw the device (an authenticated request or socket); null when never. Absent from older relays. */
  last_seen_at: z.int().min(0).nullable().optional(),
  /** How far the device has read the log: the highest seq it was sent or holds. Absent from older relays. */
  read_seq: z.int().min(0).optional(),
});
export type DeviceInfo = z.infer<typeof DeviceInfoSchema>;

/** 201 for a new device, 200 when the same device was already enrolled. */
export const EnrolResponseSchema = z.strictObject({ device: DeviceInfoSchema, created: z.boolean() });
export type EnrolResponse = z.infer<typeof EnrolResponseSchema>;

/** `head`: the log's highest seq, so head - read_seq is how far behind a device is (absent from older relays). */
export const DeviceListResponseSchema = z.strictObject({ devices: z.array(DeviceInfoSchema), head: z.int().min(0).optional() });
export type DeviceListResponse = z.infer<typeof DeviceListResponseSchema>;

/** POST /v1/motebits/:motebitId/devices/:deviceId/revoke, signed by the identity key. Body: {}. */
export const RevokeRequestSchema = z.strictObject({});
export const RevokeResponseSchema = z.strictObject({ device: DeviceInfoSchema });
export type RevokeResponse = z.infer<typeof RevokeResponseSchema>;

// ---- Events ----

export const PushRequestSchema = z.strictObject({ events: z.array(WireEventSchema).min(1).max(MAX_BATCH_EVENTS) });
export type PushRequest = z.infer<typeof PushRequestSchema>;

export const PUSH_REJECT_REASONS = [
  /** Revision 1 only: the event named another device than the token's. Since revision 2 a member may push any device's events. */
  'wrong_device',
  /** The event id is already in the log, written by another device. */
  'event_id_taken',
  /** The device already has another event at this device_seq (a fork of its own chain). */
  'device_seq_conflict',
  /** The device's events before this device_seq are not all stored: a writer's events are stored gap-free. */
  'device_seq_gap',
] as const;
export type PushRejectReason = (typeof PUSH_REJECT_REASONS)[number];

export const PushResultSchema = z.discriminatedUnion('status', [
  z.strictObject({ event_id: EventIdSchema, status: z.literal('stored'), seq: z.int().min(1) }),
  z.strictObject({ event_id: EventIdSchema, status: z.literal('duplicate'), seq: z.int().min(1) }),
  z.strictObject({ event_id: EventIdSchema, status: z.literal('rejected'), reason: z.enum(PUSH_REJECT_REASONS) }),
]);
export type PushResult = z.infer<typeof PushResultSchema>;

// Responses are plain objects (unknown fields are dropped, not refused) so that a revision may add fields.
export const PushResponseSchema = z.object({
  results: z.array(PushResultSchema),
  stored: z.int().min(0),
  duplicate: z.int().min(0),
  rejected: z.int().min(0),
  /** The motebit's highest sequence after the batch. */
  head: z.int().min(0),
  /** The epoch of the log the batch went into. */
  epoch: LogEpochSchema,
});
export type PushResponse = z.infer<typeof PushResponseSchema>;

/**
 * An integer query parameter: its text must match `pattern` (decimal, no sign or leading zeros beyond what
 * the pattern allows), and its value lie in [min, max].
 */
function queryInteger(pattern: RegExp, message: string, min: number, max: number) {
  return z.string().regex(pattern, message).transform(Number).pipe(z.int().min(min).max(max));
}

/** GET /v1/motebits/:motebitId/events?after=SEQ&limit=N (both optional; no other parameters). */
export const PullQuerySchema = z.strictObject({
  after: queryInteger(/^(0|[1-9][0-9]{0,15})$/, 'after is a sequence number', 0, Number.MAX_SAFE_INTEGER).default(0),
  limit: queryInteger(/^[1-9][0-9]{0,5}$/, 'limit is a positive integer', 1, MAX_PULL_LIMIT).default(DEFAULT_PULL_LIMIT),
});

export const PullResponseSchema = z.object({
  events: z.array(StoredWireEventSchema),
  /** The cursor to pass as `after` next: the last seq returned, or `after` when none. */
  next: z.int().min(0),
  /** Whether more events exist after `next` right now. */
  more: z.boolean(),
  /** The log's highest seq and epoch when the page was read. */
  head: z.int().min(0),
  epoch: LogEpochSchema,
});
export type PullResponse = z.infer<typeof PullResponseSchema>;

/** GET /v1/motebits/:motebitId/membership?after=SEQ (after optional: -1, the whole log). */
export const MembershipQuerySchema = z.strictObject({
  after: queryInteger(/^(-1|0|[1-9][0-9]{0,15})$/, 'after is an entry number or -1', -1, Number.MAX_SAFE_INTEGER).default(-1),
});

/** At most this many membership entries in one offer. */
export const MAX_MEMBERSHIP_ENTRIES = 64;

/** POST /v1/motebits/:motebitId/membership: entries to append (each is checked against the log; docs/keys.md). */
export const MembershipOfferSchema = z.strictObject({ entries: z.array(z.unknown()).min(1).max(MAX_MEMBERSHIP_ENTRIES) });

/** The membership entries after `after`, and the log's last entry number (-1: no log). */
export const MembershipResponseSchema = z.object({ entries: z.array(z.unknown()), head: z.int().min(-1) });
export type MembershipResponse = z.infer<typeof MembershipResponseSchema>;
export const MembershipOfferResponseSchema = z.object({ head: z.int().min(0) });

/** How long a pairing rendezvous lives (docs/keys.md): a code is worthless after it. */
export const PAIRING_LIFETIME_SECONDS = 600;

/** A rendezvous id: 6 random bytes, base64url (what the pairing code carries). */
export const PairingIdSchema = z.string().regex(/^[A-Za-z0-9_-]{8}$/, 'a pairing id is 8 base64url characters');

/** POST /v1/pairings: the new device's public keys and name (a membership MemberKey, role device). */
export const PairingCreateSchema = z.strictObject({ member: z.unknown() });
export const PairingCreatedSchema = z.object({ id: PairingIdSchema, expires_at: z.int() });

/** POST /v1/pairings/:id/offer: the member's commitment to the motebit the new device is joining. */
export const PairingOfferSchema = z.strictObject({ motebit_id: MotebitIdSchema, genesis_hash: z.string().regex(/^[0-9a-f]{64}$/, 'a genesis hash is 64 lowercase hex characters') });
export type PairingOffer = z.infer<typeof PairingOfferSchema>;

/** POST /v1/pairings/:id/reveal: the new device's nonce, once it has the offer. */
export const PairingRevealSchema = z.strictObject({ nonce: z.string().regex(/^[A-Za-z0-9_-]{22}$/, 'a nonce is 16 bytes, base64url') });

/** The relay's answer to an offer or a reveal it took. */
export const PairingStepResponseSchema = z.object({ ok: z.literal(true) });

/** GET /v1/pairings/:id: what has been exchanged so far. */
export const PairingStateSchema = z.object({
  member: z.unknown(),
  offer: PairingOfferSchema.nullable(),
  reveal: PairingRevealSchema.nullable(),
  expires_at: z.int(),
});
export type PairingState = z.infer<typeof PairingStateSchema>;

/** GET /v1/motebits/:motebitId/frontier?at=SEQ (at optional): what the log holds, per writer. */
export const FrontierQuerySchema = z.strictObject({
  at: queryInteger(/^[1-9][0-9]{0,15}$/, 'at is a sequence number', 1, Number.MAX_SAFE_INTEGER).optional(),
});

export const FrontierResponseSchema = z.object({
  epoch: LogEpochSchema,
  head: z.int().min(0),
  /** Each writer's highest stored device_seq; its events 1..seq are all stored. */
  devices: z.array(z.object({ device_id: DeviceIdSchema, seq: z.int().min(1) })),
  /** With `at`: the event the log holds at that seq (null when none), so a device can check its cursor. */
  at: z.object({ seq: z.int().min(1), event_id: EventIdSchema.nullable() }).nullable(),
  /** Each writer's compacted-through device_seq: its events 1..floor are stubs no pull returns (absent when nothing was compacted). */
  floors: z.record(DeviceIdSchema, z.int().min(1)).optional(),
});
export type FrontierResponse = z.infer<typeof FrontierResponseSchema>;

// ---- Snapshots, acknowledgements and compaction (docs/protocol.md §7, "Snapshots and compaction") ----

/** Raw bytes per snapshot chunk: a device picks within these bounds (a 1 MiB chunk fits the 4 MiB body cap in base64 JSON). */
export const MIN_SNAPSHOT_CHUNK_BYTES = 65_536;
export const MAX_SNAPSHOT_CHUNK_BYTES = 1_048_576;
/** Chunk indexes are 0..MAX_SNAPSHOT_CHUNK_INDEX. */
export const MAX_SNAPSHOT_CHUNK_INDEX = 99_999;
/** Most writers a version vector (a snapshot's or an acknowledgement's covers) names. */
export const MAX_COVERS_WRITERS = 1024;

/** How many chunks a snapshot of `size` bytes has, at `chunkBytes` each (the last one holds the remainder). */
export const snapshotChunks = (size: number, chunkBytes: number): number => Math.ceil(size / chunkBytes);

const DeviceSeqSchema = z.int().min(1).max(Number.MAX_SAFE_INTEGER);
const Sha256HexSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 is 64 lowercase hex characters');

/** A version vector { device_id: highest device_seq } naming `min`..MAX_COVERS_WRITERS writers. */
const coversSchema = (min: number) =>
  z
    .record(DeviceIdSchema, DeviceSeqSchema, { error: (issue) => (issue.code === 'invalid_key' ? 'covers names each writer by its device id (dv_ followed by 22 base64url characters)' : undefined) })
    .refine((covers) => Object.keys(covers).length >= min && Object.keys(covers).length <= MAX_COVERS_WRITERS, `covers names ${min} to ${MAX_COVERS_WRITERS} writers`);
export const SnapshotCoversSchema = coversSchema(1);
/** An acknowledgement may name no writer yet (a device that has applied nothing). */
export const AckCoversSchema = coversSchema(0);

/** A route's chunk index: a decimal integer 0..99999, no leading zeros. */
export const ChunkIndexSchema = z.string().regex(/^(0|[1-9][0-9]{0,4})$/, 'a chunk index is a whole number from 0 to 99999');

/** POST /v1/motebits/:motebitId/snapshots: begins (or resumes) the upload of a sealed snapshot. */
export const SnapshotBeginSchema = z
  .strictObject({
    snapshot_id: SnapshotIdSchema,
    size: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
    sha256: Sha256HexSchema,
    chunk_bytes: z.int().min(MIN_SNAPSHOT_CHUNK_BYTES).max(MAX_SNAPSHOT_CHUNK_BYTES),
    covers: SnapshotCoversSchema,
  })
  .refine((begin) => snapshotChunks(begin.size, begin.chunk_bytes) <= MAX_SNAPSHOT_CHUNK_INDEX + 1, `a snapshot has at most ${MAX_SNAPSHOT_CHUNK_INDEX + 1} chunks: use larger chunks`);
export type SnapshotBegin = z.infer<typeof SnapshotBeginSchema>;

/** `received`: the indexes of the chunks the relay holds already, sorted (all of them once complete). */
export const SnapshotBeginResponseSchema = z.object({ snapshot_id: SnapshotIdSchema, complete: z.boolean(), received: z.array(z.int().min(0).max(MAX_SNAPSHOT_CHUNK_INDEX)) });
export type SnapshotBeginResponse = z.infer<typeof SnapshotBeginResponseSchema>;

/** base64url without padding, exactly as an encoder writes it (so one text means one byte string). */
const ChunkDataSchema = z
  .string()
  .max(Math.ceil((MAX_SNAPSHOT_CHUNK_BYTES * 4) / 3), `a chunk is at most ${MAX_SNAPSHOT_CHUNK_BYTES} bytes`)
  .regex(/^[A-Za-z0-9_-]*$/, 'chunk data is base64url without padding')
  .refine(isCanonicalBase64Url, 'chunk data is not canonical base64url');

/** POST /v1/motebits/:motebitId/snapshots/:snapshotId/chunks/:index, and the answer to GET of the same path. */
export const SnapshotChunkSchema = z.strictObject({ data: ChunkDataSchema });
export const SnapshotChunkDataSchema = z.object({ data: ChunkDataSchema });
/** `received`: how many of the upload's chunks the relay holds now. */
export const SnapshotChunkResponseSchema = z.object({ received: z.int().min(0) });

/** POST /v1/motebits/:motebitId/snapshots/:snapshotId/commit. Body: {}. */
export const SnapshotCommitSchema = z.strictObject({});

export const SnapshotInfoSchema = z.object({
  snapshot_id: SnapshotIdSchema,
  /** The device that made (uploaded) it. */
  device_id: DeviceIdSchema,
  size: z.int().min(1),
  sha256: Sha256HexSchema,
  chunk_bytes: z.int().min(1),
  chunks: z.int().min(1),
  covers: SnapshotCoversSchema,
  /** Unix ms the relay completed it (its commit). */
  created_at: z.int().min(0),
});
export type SnapshotInfo = z.infer<typeof SnapshotInfoSchema>;
export const SnapshotCommitResponseSchema = z.object({ snapshot: SnapshotInfoSchema });

/** POST /v1/motebits/:motebitId/acks: the token's device acknowledges what it has applied (shared/ack.ts signs it). */
export const AckRequestSchema = z.strictObject({ covers: AckCoversSchema, at: z.int().min(0).max(Number.MAX_SAFE_INTEGER), sig: SignatureSchema });
export type AckRequest = z.infer<typeof AckRequestSchema>;
export const AckResponseSchema = z.object({ ok: z.literal(true) });

/** An acknowledgement as the relay stores and serves it (a device checks `sig` with the device's key). */
export const AckSchema = z.object({ device_id: DeviceIdSchema, covers: AckCoversSchema, at: z.int().min(0), sig: SignatureSchema });
export type Ack = z.infer<typeof AckSchema>;

/** GET /v1/motebits/:motebitId/snapshots/latest: the newest complete snapshot, and every live device's newest acknowledgement. */
export const LatestSnapshotResponseSchema = z.object({ snapshot: SnapshotInfoSchema.nullable(), acks: z.array(AckSchema) });
export type LatestSnapshotResponse = z.infer<typeof LatestSnapshotResponseSchema>;

export const HealthResponseSchema = z.object({ ok: z.literal(true), protocol: z.literal(RELAY_PROTOCOL), revision: z.int().min(MIN_RELAY_REVISION) });
export type HealthResponse = z.infer<typeof HealthResponseSchema>;

// ---- WebSocket ----

/** Close codes the relay uses (besides 1001 going away on shutdown and 1009 message too big). */
export const CLOSE_CODES = {
  goingAway: 1001,
  tooBig: 1009,
  /** Bad message before authentication (the first message must be auth). */
  protocolError: 4400,
  /** Authentication failed; the reason is the auth failure code. */
  authFailed: 4401,
  /** The device was revoked; reason "revoked". */
  revoked: 4403,
  /** No auth message within the auth timeout; reason "auth_timeout". */
  authTimeout: 4408,
  /** The token expired and was not renewed in-band; reason "token_expired". */
  tokenExpired: 4419,
  /** The motebit is at its quota of authenticated sockets; reason: the quota's name, "sockets". */
  quotaExceeded: 4409,
  /** Too much unprocessed work from the client (reason "overloaded"), or too many auths from its address (reason "rate_limited"). */
  overloaded: 4429,
} as const;

const ClientRequestIdSchema = z.string().min(1).max(64);

export const WsClientMessageSchema = z.discriminatedUnion('type', [
  /** First message of a socket: a device token (WS_METHOD, wsPath) and the cursor to resume after. */
  z.strictObject({ type: z.literal('auth'), token: z.string().max(4096), after: z.int().min(0).max(Number.MAX_SAFE_INTEGER) }),
  /** A fresh token for the same device, before the current one expires. */
  z.strictObject({ type: z.literal('reauth'), token: z.string().max(4096) }),
  /** Push a batch; answered by an ack with the same id. */
  z.strictObject({ type: z.literal('push'), id: ClientRequestIdSchema, events: z.array(WireEventSchema).min(1).max(MAX_BATCH_EVENTS) }),
]);
export type WsClientMessage = z.infer<typeof WsClientMessageSchema>;

/** Most pushes a relay lets one socket leave unanswered (what a 'limits' message may say). */
export const MAX_PUSHES_IN_FLIGHT = 16;

export const WsServerMessageSchema = z.discriminatedUnion('type', [
  /**
   * Revision 5, sent just before 'ready': how many pushes the socket may send before the first is answered.
   * Older devices ignore it (a message type they do not know); a device that never hears it pushes one at a time.
   */
  z.strictObject({ type: z.literal('limits'), pushes_in_flight: z.int().min(1).max(MAX_PUSHES_IN_FLIGHT) }),
  /** Authenticated; `head` is the motebit's current highest seq, `exp` the token's expiry (Unix s). */
  z.strictObject({ type: z.literal('ready'), device_id: DeviceIdSchema, head: z.int().min(0), epoch: LogEpochSchema, exp: z.int() }),
  z.strictObject({ type: z.literal('reauthed'), exp: z.int() }),
  /** Events in seq order, each exactly once per socket, strictly after the socket's cursor. */
  z.strictObject({ type: z.literal('events'), events: z.array(StoredWireEventSchema) }),
  /** Everything up to `seq` has been sent; from now on events come live. */
  z.strictObject({ type: z.literal('caught_up'), seq: z.int().min(0) }),
  z.strictObject({
    type: z.literal('ack'),
    id: ClientRequestIdSchema,
    results: z.array(PushResultSchema),
    stored: z.int().min(0),
    duplicate: z.int().min(0),
    rejected: z.int().min(0),
    head: z.int().min(0),
    epoch: LogEpochSchema,
  }),
  /**
   * A message was refused; the socket stays open. `id` names the push it answers, if any; `quota` names the
   * quota with quota_exceeded. Read leniently (unknown fields ignored), like every response, so a later
   * revision may add fields.
   */
  z.object({
    type: z.literal('error'),
    id: ClientRequestIdSchema.optional(),
    code: z.enum(ERROR_CODES),
    quota: z.enum(QUOTA_NAMES).optional(),
    message: z.string(),
    retry_after: z.int().optional(),
  }),
]);
export type WsServerMessage = z.infer<typeof WsServerMessageSchema>;
