// End-to-end encryption of event bodies (AES-256-GCM). The relay stores and serves the envelope in clear
// (it needs it to order and deduplicate), so the envelope is bound to the ciphertext as associated data:
// a body moved to another event, another device, another sequence or another motebit no longer opens.
//
//   sealed body = nonce (12 random bytes) || ciphertext || tag (16 bytes)
//   aad         = RFC 8785 canonical JSON of { motebit_id, device_id, event_id, device_seq, key_id }
//
// Pure functions with no state, so benchmarks and tests can use them without a transport.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
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
  return canonicalBytes({
    motebit_id: envelope.motebit_id,
    device_id: envelope.device_id,
    event_id: envelope.event_id,
    device_seq: envelope.device_seq,
    key_id: envelope.key_id,
  });
}

function checkKey(key: Uint8Array): void {
  if (key.byteLength !== BODY_KEY_BYTES) throw new RangeError(`an AES-256-GCM key is ${BODY_KEY_BYTES} bytes`);
}

/**
 * Seals `plaintext` under `key`, bound to `aad`. A fresh random nonce per call (the default) is what makes
 * GCM safe; `nonce` is only for known-answer tests.
 */
export function sealBody(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, nonce: Uint8Array = randomBytes(BODY_NONCE_BYTES)): Buffer {
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
export function openBody(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Buffer | null {
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
