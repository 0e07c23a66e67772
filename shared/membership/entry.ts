// A membership log entry: the wire form, its signing input and its hash (docs/keys.md).
//
// The log is a hash chain of signed entries: genesis (the founding device and the recovery key, epoch 1),
// add (a device, with the current content key wrapped for it), remove (a device, the last of its events
// that stays valid, and a new epoch), rotate (a new epoch) and recovery (a new recovery key, signed by the
// old one). Each entry names the hash of the one before; the motebit id commits to the genesis entry.
// What an entry may do is decided by log.ts; this module only says what an entry looks like.
import { z } from 'zod';
import { sha256, sha256Hex, verifySignature, type SigningKey } from '../crypto.ts';
import { base64UrlPattern } from '../portable/base64url.ts';
import { canonicalBytes, fromBase64Url, toBase64Url } from '../encoding.ts';
import { DeviceIdSchema, MotebitIdSchema } from '../portable/ids.ts';
import { deviceIdFromDeviceKey, motebitIdFromGenesisHash, motebitIdFromIdentityKey, recoveryIdFromKey } from '../ids.ts';

export const MEMBERSHIP_VERSION = 1;
/** At most this many members (devices and the recovery key) at once. */
export const MAX_MEMBERS = 32;
const SIGN_DOMAIN = 'motebit/membership/v1\n';
const LEGACY_DOMAIN = 'motebit/membership-legacy/v1\n';
const GENESIS_ID_DOMAIN = 'motebit/genesis-id/v1\n';

const Key32 = z.string().regex(base64UrlPattern(32), 'a key is 32 bytes, base64url');
const Signature = z.string().regex(base64UrlPattern(64), 'a signature is 64 bytes, base64url');
const Hash = z.string().regex(/^[0-9a-f]{64}$/, 'a hash is 64 lowercase hex characters');

/** A device (dv_) or a recovery key (rk_): derived from its signing key, like a device id. */
export const MemberIdSchema = z.string().regex(/^(dv|rk)_[A-Za-z0-9_-]{22}$/, 'a member id is dv_ or rk_ followed by 22 base64url characters');

export const MemberRoleSchema = z.enum(['device', 'recovery']);
export type MemberRole = z.infer<typeof MemberRoleSchema>;

export const MemberKeySchema = z.strictObject({
  id: MemberIdSchema,
  role: MemberRoleSchema,
  /** Ed25519 public key: signs entries, events and tokens. */
  sign_key: Key32,
  /** X25519 public key: content keys are wrapped for it (HPKE). */
  kem_key: Key32,
  name: z
    .string()
    .max(64)
    .regex(/^[^\p{Cc}]*$/u, 'a name has no control characters')
    .nullable(),
});
export type MemberKey = z.infer<typeof MemberKeySchema>;

/** A content key wrapped for one member: HPKE (RFC 9180) base mode, X25519 / HKDF-SHA256 / AES-256-GCM. */
export const WrapSchema = z.strictObject({
  /** The encapsulated key (32 bytes). */
  enc: Key32,
  /** The sealed 32-byte content key and its 16-byte tag (48 bytes). */
  ct: z.string().regex(base64UrlPattern(48), 'a wrapped key is 48 bytes, base64url'),
});
export type Wrap = z.infer<typeof WrapSchema>;

/** The previous epoch's key, sealed with this epoch's key (AES-256-GCM): whoever reads an epoch reads all before it. */
export const ChainedKeySchema = z.strictObject({
  nonce: z.string().regex(base64UrlPattern(12), 'a nonce is 12 bytes, base64url'),
  ct: z.string().regex(base64UrlPattern(48), 'a chained key is 48 bytes, base64url'),
});
export type ChainedKey = z.infer<typeof ChainedKeySchema>;

export const KeyIdSchema = z.string().regex(/^ek_[A-Za-z0-9_-]{16}$/, 'a key id is ek_ followed by 16 base64url characters');

export const EpochSchema = z.strictObject({
  n: z.int().min(1),
  /** Names the epoch's key on the wire and commits to it (epoch-keys.ts keyIdOf). */
  key_id: KeyIdSchema,
  /** The key, wrapped for every member at this point, by member id. */
  wraps: z.record(MemberIdSchema, WrapSchema),
  /** The previous epoch's key sealed with this one; null only for the first epoch of a new motebit. */
  prev_key: ChainedKeySchema.nullable(),
  /** The previous epoch's key id (what prev_key opens to); null with prev_key. */
  prev_key_id: KeyIdSchema.nullable(),
});
export type Epoch = z.infer<typeof EpochSchema>;

const Base = {
  v: z.literal(MEMBERSHIP_VERSION),
  seq: z.int().min(0),
  /** The previous entry's hash; null for genesis. */
  prev: Hash.nullable(),
  /** The member that signs the entry; it must be a member right before it. */
  signer: MemberIdSchema,
  /** Unix ms, as the signer's clock said: shown to people, never used to decide anything. */
  at: z.int().min(0),
  sig: Signature,
};

export const GenesisEntrySchema = z.strictObject({
  ...Base,
  kind: z.literal('genesis'),
  members: z.array(MemberKeySchema).min(2).max(MAX_MEMBERS),
  epoch: EpochSchema,
  /**
   * A motebit made before membership logs (protocol 2) keeps its id: its old identity key signs the
   * genesis, and the id stays the one derived from that key. Absent for a new motebit, whose id is
   * derived from the genesis entry's hash.
   */
  legacy: z
    .strictObject({
      identity_key: Key32,
      sig: Signature,
      /**
       * Each protocol-2 device's last event as the upgrading device held it (device id → device_seq): those
       * events, certified by the identity key and naming no log position, stay valid; any later one is refused.
       */
      frontier: z.record(DeviceIdSchema, z.int().min(0).max(Number.MAX_SAFE_INTEGER)),
    })
    .optional(),
});

export const AddEntrySchema = z.strictObject({
  ...Base,
  kind: z.literal('add'),
  motebit_id: MotebitIdSchema,
  member: MemberKeySchema,
  wrap: WrapSchema,
  /**
   * An upgraded motebit only: a protocol-2 device upgraded later keeps its device id, and its events up to
   * this device_seq from before its upgrade (certified, naming no log position) are valid.
   */
  legacy_seq: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
});

export const RemoveEntrySchema = z.strictObject({
  ...Base,
  kind: z.literal('remove'),
  motebit_id: MotebitIdSchema,
  member_id: MemberIdSchema,
  /** The removed device's events up to this device_seq stay valid; any later one is refused everywhere. */
  cutoff: z.int().min(0),
  /**
   * The hash of that last valid event (null with cutoff 0): it pins the removed device's whole history up to
   * the cutoff through the hash chain, so it cannot write another version of an event it wrote before.
   */
  cutoff_hash: Hash.nullable(),
  epoch: EpochSchema,
});

export const RotateEntrySchema = z.strictObject({ ...Base, kind: z.literal('rotate'), motebit_id: MotebitIdSchema, epoch: EpochSchema });

export const RecoveryEntrySchema = z.strictObject({ ...Base, kind: z.literal('recovery'), motebit_id: MotebitIdSchema, member: MemberKeySchema, wrap: WrapSchema });

export const EntrySchema = z.discriminatedUnion('kind', [GenesisEntrySchema, AddEntrySchema, RemoveEntrySchema, RotateEntrySchema, RecoveryEntrySchema]);
export type Entry = z.infer<typeof EntrySchema>;
export type GenesisEntry = z.infer<typeof GenesisEntrySchema>;
export type EntryKind = Entry['kind'];

/** An entry as written before it is signed. */
export type UnsignedEntry = Entry extends infer E ? (E extends Entry ? Omit<E, 'sig'> : never) : never;

function withoutSig(entry: UnsignedEntry | Entry): Record<string, unknown> {
  const { sig: _sig, ...rest } = entry as Entry;
  if (rest.kind === 'genesis' && rest.legacy) return { ...rest, legacy: { identity_key: rest.legacy.identity_key, frontier: rest.legacy.frontier } };
  return rest;
}

/** What the signer signs: a domain tag and the canonical JSON of the entry without its signature(s). */
export function signingInput(entry: UnsignedEntry | Entry): Buffer {
  return Buffer.concat([Buffer.from(SIGN_DOMAIN), canonicalBytes(withoutSig(entry))]);
}

/** What an old identity key signs to carry its motebit id into a genesis entry. */
export function legacySigningInput(entry: UnsignedEntry | Entry): Buffer {
  return Buffer.concat([Buffer.from(LEGACY_DOMAIN), canonicalBytes(withoutSig(entry))]);
}

export function signEntry<E extends UnsignedEntry>(entry: E, key: SigningKey): E & { sig: string } {
  return { ...entry, sig: toBase64Url(key.sign(signingInput(entry))) };
}

export function verifyEntrySignature(entry: Entry, signKey: string): boolean {
  return verifySignature(fromBase64Url(signKey), signingInput(entry), fromBase64Url(entry.sig));
}

export function verifyLegacySignature(entry: GenesisEntry): boolean {
  if (!entry.legacy) return false;
  return verifySignature(fromBase64Url(entry.legacy.identity_key), legacySigningInput(entry), fromBase64Url(entry.legacy.sig));
}

/** The hash the next entry names as `prev`: SHA-256 of the whole signed entry's canonical JSON. */
export function entryHash(entry: Entry): string {
  return sha256Hex(canonicalBytes(entry));
}

/** The motebit id a new motebit's genesis entry commits to (a legacy genesis keeps its identity key's id). */
export function motebitIdOfGenesis(genesis: GenesisEntry): string {
  if (genesis.legacy) return motebitIdFromIdentityKey(fromBase64Url(genesis.legacy.identity_key));
  return motebitIdFromGenesisHash(sha256(GENESIS_ID_DOMAIN + entryHash(genesis)));
}

/** A member id from its role and signing key: a device's is its device id. */
export function memberIdOf(role: MemberRole, signKey: Uint8Array): string {
  return role === 'device' ? deviceIdFromDeviceKey(signKey) : recoveryIdFromKey(signKey);
}
