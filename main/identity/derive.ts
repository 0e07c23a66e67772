// What a device derives from the master token, with HKDF-SHA256 (RFC 5869). One fixed salt, one distinct
// `info` label per purpose, so the derived keys are independent of each other:
//
//   identity seed   = HKDF(token, salt, "motebit/identity-seed/v1", 32)   → Ed25519 identity key → motebit id
//   encryption key  = HKDF(token, salt, "motebit/encryption-key/v1", 32)  → AES-256-GCM
//   key id          = "ek_" + base64url(first 12 bytes of SHA-256("motebit/key-id/v1" NUL key))
//
// The key id names the key on the wire (envelope key_id) without revealing it, so a rotation can add new
// ids next to old ones later (docs/security.md).
import { hkdfSync } from 'node:crypto';
import { signingKeyFromSeed, type SigningKey } from '../../shared/crypto.ts';
import { keyIdOf } from '../../shared/membership/epoch-keys.ts';
import { motebitIdFromIdentityKey } from '../../shared/ids.ts';
import { MASTER_TOKEN_BYTES } from './master-token.ts';

export const HKDF_SALT = 'motebit-sync/hkdf-salt/v1';
export const IDENTITY_SEED_INFO = 'motebit/identity-seed/v1';
export const ENCRYPTION_KEY_INFO = 'motebit/encryption-key/v1';

export interface EncryptionKey {
  /** Names the key in wire envelopes (key_id); safe to show to the relay. */
  readonly id: string;
  /** 32 bytes for AES-256-GCM. Secret. */
  readonly key: Buffer;
}

export interface DerivedIdentity {
  readonly identityKey: SigningKey;
  readonly motebitId: string;
  readonly encryptionKey: EncryptionKey;
}

/** HKDF-SHA256 of the master token for one purpose (`info`). Exposed for tests and future labels. */
export function deriveBytes(masterToken: Uint8Array, info: string, length = 32): Buffer {
  if (masterToken.byteLength !== MASTER_TOKEN_BYTES) throw new RangeError(`a master token is ${MASTER_TOKEN_BYTES} bytes`);
  return Buffer.from(hkdfSync('sha256', masterToken, HKDF_SALT, info, length));
}

/** The key's id: the same rule as every epoch key's (shared/membership/epoch-keys.ts). */
export const encryptionKeyId = keyIdOf;

export function deriveIdentityKey(masterToken: Uint8Array): SigningKey {
  return signingKeyFromSeed(deriveBytes(masterToken, IDENTITY_SEED_INFO));
}

export function deriveEncryptionKey(masterToken: Uint8Array): EncryptionKey {
  const key = deriveBytes(masterToken, ENCRYPTION_KEY_INFO);
  return { id: encryptionKeyId(key), key };
}

/** Everything the master token determines: the same token gives the same motebit on every device. */
export function deriveIdentity(masterToken: Uint8Array): DerivedIdentity {
  const identityKey = deriveIdentityKey(masterToken);
  return { identityKey, motebitId: motebitIdFromIdentityKey(identityKey.publicKey), encryptionKey: deriveEncryptionKey(masterToken) };
}
