// The event: the unit of the log. Schema, canonical hash and the checkpoint seal (docs/protocol.md).
import { MAX_PAYLOAD_DEPTH, jsonValueDepth } from './json-bounds.ts';
import { z } from 'zod';
import { canonicalBytes, base64UrlPattern, fromBase64Url, toBase64Url } from './encoding.ts';
import { sha256Hex, verifySignature, type SigningKey } from './crypto.ts';
import { DeviceIdSchema, EventIdSchema, MotebitIdSchema, deviceIdFromDeviceKey } from './ids.ts';

export const PROTOCOL_VERSION = 1;
export const GENESIS_HASH = '0'.repeat(64);
export const MAX_ENTITY_LENGTH = 256;
export const MAX_PAYLOAD_BYTES = 64 * 1024;

export const HashSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a hash is 64 lowercase hex characters');

// Entities are names like memory/42: printable, no control characters, bounded.
export const EntitySchema = z
  .string()
  .min(1, 'an entity name is not empty')
  .max(MAX_ENTITY_LENGTH, `an entity name is at most ${MAX_ENTITY_LENGTH} characters`)
  .regex(/^[^\p{Cc}\p{Cs}]+$/u, 'an entity name has no control characters');

export const JsonValueSchema = z.json();
export type JsonValue = z.infer<typeof JsonValueSchema>;

/**
 * Whether `value` is a tree z.json() accepts and would return unchanged but for being a copy, checked in
 * one walk without zod's machinery: strings, finite numbers, booleans, null, arrays (Array.prototype, no
 * holes) and objects (Object.prototype, no symbol keys, no own "__proto__" key, which z.json() drops) of
 * them, at most MAX_PAYLOAD_DEPTH deep. Everything JSON.parse produces is such a tree (the events of a
 * sync arrive that way), so for them this is the whole check; anything else is left to z.json().
 * (Differences it leaves, invisible to canonical JSON and JSON.stringify: a non-enumerable property or a
 * non-index array property is kept rather than dropped, and a getter is read again later.)
 */
function isPlainJsonTree(value: unknown): boolean {
  const stack: unknown[] = [value];
  const depths: number[] = [0];
  while (stack.length > 0) {
    const item = stack.pop();
    const depth = depths.pop()!;
    switch (typeof item) {
      case 'string':
      case 'boolean':
        continue;
      case 'number':
        if (!Number.isFinite(item)) return false;
        continue;
      case 'object': {
        if (item === null) continue;
        if (depth >= MAX_PAYLOAD_DEPTH) return false;
        if (Array.isArray(item)) {
          if (Object.getPrototypeOf(item) !== Array.prototype) return false;
          for (let i = 0; i < item.length; i++) {
            if (!(i in item)) return false;
            stack.push(item[i]);
            depths.push(depth + 1);
          }
          continue;
        }
        if (Object.getPrototypeOf(item) !== Object.prototype || Object.hasOwn(item, '__proto__') || Object.getOwnPropertySymbols(item).length > 0) return false;
        for (const key of Object.keys(item)) {
          stack.push((item as Record<string, unknown>)[key]);
          depths.push(depth + 1);
        }
        continue;
      }
      default:
        return false;
    }
  }
  return true;
}

/**
 * An event's payload: JsonValueSchema's answer, issues included, without its re-walk of a value that is
 * already a plain JSON tree (a received event's payload comes straight out of JSON.parse).
 */
const PayloadSchema = z.unknown().transform((value, ctx): JsonValue => {
  if (isPlainJsonTree(value)) return value as JsonValue;
  const parsed = JsonValueSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) ctx.addIssue(issue as Parameters<typeof ctx.addIssue>[0]);
  return z.NEVER;
});

const SeqSchema = z.int().min(1).max(Number.MAX_SAFE_INTEGER);

export const VersionClockSchema = z.strictObject({
  l: SeqSchema,
  v: z.record(DeviceIdSchema, SeqSchema),
});

export const OperationSchema = z.enum(['set', 'delete']);
export type Operation = z.infer<typeof OperationSchema>;

/** Proof that a device's chain up to this event is its own: see sealEvent. */
export const SealSchema = z.strictObject({
  /** The device's Ed25519 public key; the device id is derived from it. */
  key: z.string().regex(base64UrlPattern(32), 'a public key is 32 bytes of base64url'),
  /**
   * Protocol 2 only: the motebit identity's signature over (motebit, device, key), saying the device belongs
   * to the motebit. A motebit with a membership log (docs/keys.md) has no identity key: its log says who
   * the members are, so its seals carry no cert.
   */
  cert: z.string().regex(base64UrlPattern(64), 'a signature is 64 bytes of base64url').optional(),
  /** The device's signature over (motebit, device, sequence, hash of this event). */
  sig: z.string().regex(base64UrlPattern(64), 'a signature is 64 bytes of base64url'),
});
export type Seal = z.infer<typeof SealSchema>;

const eventFields = {
  v: z.literal(PROTOCOL_VERSION),
  motebit_id: MotebitIdSchema,
  device_id: DeviceIdSchema,
  event_id: EventIdSchema,
  device_seq: SeqSchema,
  /** Hash of the same device's previous event (GENESIS_HASH for the first). */
  prev: HashSchema,
  clock: VersionClockSchema,
  entity: EntitySchema,
  op: OperationSchema,
  /** Opaque to sync: any JSON for set, null for delete. */
  payload: PayloadSchema,
  /** Wall-clock milliseconds when written: shown to people, never used for ordering. */
  ts: z.int().min(0),
  /**
   * The membership log position its writer knew (the seq of the last entry it had verified): present in
   * every event of a motebit with a membership log, absent in protocol 2. Hashed with the event, so the
   * writer's seal commits to it (docs/keys.md, "Events and the log").
   */
  m: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
};

function checkEventInvariants(event: { device_id: string; device_seq: number; clock: { v: Record<string, number> }; op: string; payload: unknown }, ctx: z.RefinementCtx): void {
  if (event.clock.v[event.device_id] !== event.device_seq) {
    ctx.addIssue({ code: 'custom', path: ['clock', 'v'], message: 'the clock must name the writing device at its own sequence' });
  }
  if (event.op === 'delete' && event.payload !== null) {
    ctx.addIssue({ code: 'custom', path: ['payload'], message: 'a delete carries a null payload' });
  }
  if (jsonValueDepth(event.payload, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH) {
    ctx.addIssue({ code: 'custom', path: ['payload'], message: `a payload is nested at most ${MAX_PAYLOAD_DEPTH} deep` });
  }
}

export const EventSchema = z.strictObject(eventFields).superRefine(checkEventInvariants);
export type Event = z.infer<typeof EventSchema>;

export const SealedEventSchema = z.strictObject({ ...eventFields, seal: SealSchema.optional() }).superRefine(checkEventInvariants);
export type SealedEvent = z.infer<typeof SealedEventSchema>;

/** The event without its seal: what the hash, and so the chain, commit to. */
export function unsealed(event: SealedEvent): Event {
  if (event.seal === undefined) return event;
  const { seal: _seal, ...rest } = event;
  return rest;
}

export function hashEvent(event: SealedEvent): string {
  return sha256Hex(canonicalBytes(unsealed(event)));
}

export function payloadSize(payload: JsonValue): number {
  return canonicalBytes(payload).byteLength;
}

function certMessage(motebitId: string, deviceId: string, deviceKey: string): Buffer {
  return canonicalBytes({ t: 'motebit/device-cert/v1', motebit_id: motebitId, device_id: deviceId, key: deviceKey });
}

function sealMessage(motebitId: string, deviceId: string, deviceSeq: number, hash: string): Buffer {
  return canonicalBytes({ t: 'motebit/seal/v1', motebit_id: motebitId, device_id: deviceId, device_seq: deviceSeq, hash });
}

/** The identity's statement that a device key belongs to the motebit. Made once, at enrolment. */
export function certifyDevice(identity: SigningKey, motebitId: string, devicePublicKey: Uint8Array): string {
  const key = toBase64Url(devicePublicKey);
  return toBase64Url(identity.sign(certMessage(motebitId, deviceIdFromDeviceKey(devicePublicKey), key)));
}

export interface DeviceCredentials {
  readonly deviceKey: SigningKey;
  /** certifyDevice(identity, motebitId, deviceKey.publicKey); null for a member of a membership log (no identity key). */
  readonly cert: string | null;
}

/**
 * Seal an event: the device signs its hash, which through `prev` commits to the device's whole history up
 * to it. One seal per pushed batch authenticates the batch (a checkpoint), so verification costs one
 * signature per batch, not per event.
 */
export function sealEvent(event: SealedEvent, device: DeviceCredentials): SealedEvent {
  const hash = hashEvent(event);
  const sig = device.deviceKey.sign(sealMessage(event.motebit_id, event.device_id, event.device_seq, hash));
  const key = toBase64Url(device.deviceKey.publicKey);
  return { ...unsealed(event), seal: device.cert === null ? { key, sig: toBase64Url(sig) } : { key, cert: device.cert, sig: toBase64Url(sig) } };
}

export type SealProblem = 'device_key_mismatch' | 'bad_device_cert' | 'bad_signature';

// A device's cert is the same on every seal it makes: remember the ones already verified (bounded).
const verifiedCerts = new Set<string>();
const VERIFIED_CERT_LIMIT = 4096;

/** Whether the identity key certified this device key for the motebit (the check the relay makes at enrolment). */
export function verifyDeviceCert(identityPublicKey: Uint8Array, motebitId: string, deviceId: string, deviceKey: string, cert: string): boolean {
  return verifySignature(identityPublicKey, certMessage(motebitId, deviceId, deviceKey), fromBase64Url(cert));
}

function certHolds(identityPublicKey: Uint8Array, motebitId: string, deviceId: string, seal: Seal): boolean {
  if (seal.cert === undefined) return false;
  const id = `${Buffer.from(identityPublicKey).toString('base64url')}|${motebitId}|${deviceId}|${seal.key}|${seal.cert}`;
  if (verifiedCerts.has(id)) return true;
  if (!verifyDeviceCert(identityPublicKey, motebitId, deviceId, seal.key, seal.cert)) return false;
  if (verifiedCerts.size >= VERIFIED_CERT_LIMIT) verifiedCerts.clear();
  verifiedCerts.add(id);
  return true;
}

/** Checks a seal against the motebit's identity key (protocol 2); returns what is wrong, or null when it holds. */
export function checkSeal(event: SealedEvent, hash: string, identityPublicKey: Uint8Array): SealProblem | null {
  const seal = event.seal;
  if (!seal) return 'bad_signature';
  const deviceKey = fromBase64Url(seal.key);
  if (deviceIdFromDeviceKey(deviceKey) !== event.device_id) return 'device_key_mismatch';
  if (!certHolds(identityPublicKey, event.motebit_id, event.device_id, seal)) return 'bad_device_cert';
  return checkSealSignature(event, hash, deviceKey);
}

/** Whether the seal's signature over (motebit, device, sequence, hash) holds under `deviceKey`. */
export function checkSealSignature(event: SealedEvent, hash: string, deviceKey: Uint8Array): SealProblem | null {
  const seal = event.seal;
  if (!seal) return 'bad_signature';
  return verifySignature(deviceKey, sealMessage(event.motebit_id, event.device_id, event.device_seq, hash), fromBase64Url(seal.sig)) ? null : 'bad_signature';
}
