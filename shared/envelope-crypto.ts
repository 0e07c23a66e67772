// End-to-end encryption of event bodies (AES-256-GCM). The relay stores and serves the envelope in clear
// (it needs it to order and deduplicate), so the envelope is bound to the ciphertext as associated data:
// a body moved to another event, another device, another sequence or another motebit no longer opens.
//
//   sealed body = nonce (12 random bytes) || ciphertext || tag (16 bytes)
//   aad         = RFC 8785 canonical JSON of { motebit_id, device_id, event_id, device_seq, key_id }
//
// Pure functions with no state, so benchmarks and tests can use them without a transport. A key is given
// as its 32 raw bytes, or imported once as a KeyObject: importing raw bytes again for every body costs
// more than opening a 1 KB body, so a receiver keeps its imported keys in a BodyKeyCache.
import { createCipheriv, createDecipheriv, createSecretKey, hash, randomBytes, type KeyObject } from 'node:crypto';
import { canonicalBytes } from './encoding.ts';

export const BODY_KEY_BYTES = 32;
export const BODY_NONCE_BYTES = 12;
export const BODY_TAG_BYTES = 16;
/** Bytes a sealed body adds to its plaintext. */
export const SEAL_OVERHEAD_BYTES = BODY_NONCE_BYTES + BODY_TAG_BYTES;

/** What of an event's envelope a sealed body is bound to. The relay's seq is not known when sealing. */
export interface BodyEnvelope {
  readonly motebit_id: string;
  readonly device_id: string;
  readonly event_id: string;
  readonly device_seq: number;
  /** The id of the key that seals the body. */
  readonly key_id: string;
}

export function envelopeAad(envelope: BodyEnvelope): Buffer {
  const { motebit_id, device_id, event_id, device_seq, key_id } = envelope;
  // Every body is opened with its AAD, so it is written out here (as canonicalize would for five
  // primitive members: keys in UTF-16 order, strings and finite numbers as JSON.stringify writes them);
  // anything else goes through canonicalize, which writes or refuses it.
  if (wellFormed(motebit_id) && wellFormed(device_id) && wellFormed(event_id) && wellFormed(key_id) && typeof device_seq === 'number' && Number.isFinite(device_seq)) {
    const text = `{"device_id":${JSON.stringify(device_id)},"device_seq":${JSON.stringify(device_seq)},"event_id":${JSON.stringify(event_id)},"key_id":${JSON.stringify(key_id)},"motebit_id":${JSON.stringify(motebit_id)}}`;
    return Buffer.from(text, 'utf8');
  }
  return canonicalBytes({ motebit_id, device_id, event_id, device_seq, key_id });
}

const wellFormed = (value: unknown): value is string => typeof value === 'string' && value.isWellFormed();

/** An AES-256-GCM key: 32 raw bytes, or those bytes imported once (BodyKeyCache). */
export type AesKey = Uint8Array | KeyObject;

function checkKey(key: AesKey): void {
  const size = key instanceof Uint8Array ? key.byteLength : key.type === 'secret' ? key.symmetricKeySize : undefined;
  if (size !== BODY_KEY_BYTES) throw new RangeError(`an AES-256-GCM key is ${BODY_KEY_BYTES} bytes`);
}

const FINGERPRINT_DOMAIN = Buffer.from('motebit/body-key-cache/v1\u0000', 'utf8');

/**
 * Body keys imported once and reused (imported for every body, a key costs more than the body's
 * decryption). An entry is found by the key id and a fingerprint of the key bytes together, so a key is
 * only ever served for the id and the bytes it was imported from: another id, or other bytes under the
 * same id (a keyring that changed), import afresh. Bounded: the least recently used entry goes first.
 * The fingerprint is a domain-separated SHA-256 of the bytes; neither bytes nor fingerprints are ever
 * logged or handed out.
 */
export class BodyKeyCache {
  readonly #entries = new Map<string, KeyObject>();
  readonly #limit: number;

  constructor(limit = 16) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError('a key cache holds at least one key');
    this.#limit = limit;
  }

  /** How many keys are held. */
  get size(): number {
    return this.#entries.size;
  }

  /** `bytes` imported as an AES-256-GCM key, for `keyId`. Throws RangeError for a key that is not 32 bytes. */
  key(keyId: string, bytes: Uint8Array): KeyObject {
    checkKey(bytes);
    const slot = `${keyId}\u0000${hash('sha256', Buffer.concat([FINGERPRINT_DOMAIN, bytes]), 'base64url')}`;
    let key = this.#entries.get(slot);
    if (key) {
      this.#entries.delete(slot); // most recently used last
    } else {
      key = createSecretKey(bytes);
      if (this.#entries.size >= this.#limit) this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(slot, key);
    return key;
  }
}

/**
 * Seals `plaintext` under `key`, bound to `aad`. A fresh random nonce per call (the default) is what makes
 * GCM safe; `nonce` is only for known-answer tests.
 */
export function sealBody(key: AesKey, plaintext: Uint8Array, aad: Uint8Array, nonce: Uint8Array = randomBytes(BODY_NONCE_BYTES)): Buffer {
  checkKey(key);
  if (nonce.byteLength !== BODY_NONCE_BYTES) throw new RangeError(`a nonce is ${BODY_NONCE_BYTES} bytes`);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: BODY_TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, ciphertext, cipher.getAuthTag()]);
}

/**
 * Opens a sealed body; null when it does not authenticate under this key and aad (wrong key, tampered or
 * truncated bytes, another envelope). Never throws for bad input, only for a key of the wrong size.
 */
export function openBody(key: AesKey, sealed: Uint8Array, aad: Uint8Array): Buffer | null {
  checkKey(key);
  if (sealed.byteLength < SEAL_OVERHEAD_BYTES) return null;
  const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const nonce = bytes.subarray(0, BODY_NONCE_BYTES);
  const tag = bytes.subarray(bytes.byteLength - BODY_TAG_BYTES);
  const ciphertext = bytes.subarray(BODY_NONCE_BYTES, bytes.byteLength - BODY_TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: BODY_TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    return null;
  }
}

/** The nonce of a sealed body (tests check nonces never repeat). */
export function sealedNonce(sealed: Uint8Array): Buffer {
  return Buffer.from(sealed.subarray(0, BODY_NONCE_BYTES));
}
