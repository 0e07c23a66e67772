// The event's canonical hash and its checkpoint seal (docs/protocol.md): Node's crypto. What an event is
// (its schema) is portable: shared/portable/event.ts.
import { canonicalBytes, fromBase64Url, toBase64Url } from './encoding.ts';
import { sha256Hex, verifySignature, type SigningKey } from './crypto.ts';
import { deviceIdFromDeviceKey } from './ids.ts';
import type { Event, JsonValue, Seal, SealedEvent } from './portable/event.ts';

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
