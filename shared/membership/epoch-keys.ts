// Content keys by epoch (docs/keys.md): each epoch's AES-256-GCM key is random, wrapped for every member's
// X25519 key with HPKE (RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM; the
// @hpke/core library, on WebCrypto), and seals the previous epoch's key, so whoever can read an epoch can
// read every epoch before it while a removed member, who never gets the new key, reads nothing after.
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, hkdfSync, randomBytes } from 'node:crypto';
import type { CipherSuite } from '@hpke/core';
import { sha256 } from '../crypto.ts';
import { fromBase64Url, toBase64Url } from '../encoding.ts';
import type { ChainedKey, Wrap } from './entry.ts';

export const CONTENT_KEY_BYTES = 32;
const KEY_ID_DOMAIN = 'motebit/key-id/v1';
const KEY_ID_BYTES = 12;
const WRAP_INFO = 'motebit/epoch-key/v1';
const CHAIN_AAD = 'motebit/epoch-chain/v1';
const KEM_SEED_INFO = 'motebit/kem-key/v1';
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

// Loaded on first use: a CLI command that wraps no key does not pay for the library.
let suitePromise: Promise<CipherSuite> | undefined;
function hpke(): Promise<CipherSuite> {
  suitePromise ??= import('@hpke/core').then(({ Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 }) => new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() }));
  return suitePromise;
}

/** Names a content key on the wire (envelope key_id) and commits to it, without revealing it. */
export function keyIdOf(key: Uint8Array): string {
  const digest = sha256(Buffer.concat([Buffer.from(`${KEY_ID_DOMAIN}\0`), key]));
  return 'ek_' + digest.subarray(0, KEY_ID_BYTES).toString('base64url');
}

export function newContentKey(): Buffer {
  return randomBytes(CONTENT_KEY_BYTES);
}

export interface KemKeyPair {
  /** Raw X25519 private key (32 bytes). Secret. */
  readonly privateKey: Buffer;
  /** Raw X25519 public key (32 bytes). */
  readonly publicKey: Buffer;
}

/** A member's X25519 key pair, derived from its 32-byte root secret (HKDF-SHA256, its own label). */
export function kemKeyPairFromSecret(rootSecret: Uint8Array, salt: string): KemKeyPair {
  if (rootSecret.byteLength !== 32) throw new RangeError('a root secret is 32 bytes');
  const privateKey = Buffer.from(hkdfSync('sha256', rootSecret, salt, KEM_SEED_INFO, 32));
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, privateKey]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey: Buffer.from(spki.subarray(SPKI_X25519_PREFIX.length)) };
}

/** What a wrap is bound to: a wrap cannot be moved to another member, epoch or key. */
export interface WrapContext {
  readonly recipientId: string;
  readonly epoch: number;
  readonly keyId: string;
}

function wrapInfo(context: WrapContext): Buffer {
  return Buffer.from(`${WRAP_INFO}\n${context.recipientId}\n${context.epoch}\n${context.keyId}`);
}

export async function wrapKey(key: Uint8Array, recipientKemKey: string, context: WrapContext): Promise<Wrap> {
  const suite = await hpke();
  const recipientPublicKey = await suite.kem.deserializePublicKey(fromBase64Url(recipientKemKey));
  const sealed = await suite.seal({ recipientPublicKey, info: wrapInfo(context) }, key);
  return { enc: toBase64Url(new Uint8Array(sealed.enc)), ct: toBase64Url(new Uint8Array(sealed.ct)) };
}

/** The key in `wrap`, or null when it does not open with this private key or is not the key `context` names. */
export async function unwrapKey(wrap: Wrap, privateKey: Uint8Array, context: WrapContext): Promise<Buffer | null> {
  try {
    const suite = await hpke();
    const recipientKey = await suite.kem.deserializePrivateKey(privateKey);
    const opened = Buffer.from(await suite.open({ recipientKey, enc: fromBase64Url(wrap.enc), info: wrapInfo(context) }, fromBase64Url(wrap.ct)));
    return opened.byteLength === CONTENT_KEY_BYTES && keyIdOf(opened) === context.keyId ? opened : null;
  } catch {
    return null;
  }
}

function chainAad(epoch: number, keyId: string, prevKeyId: string): Buffer {
  return Buffer.from(`${CHAIN_AAD}\n${epoch}\n${keyId}\n${prevKeyId}`);
}

/** The previous epoch's key sealed with this epoch's key. */
export function chainKey(key: Uint8Array, epoch: number, prevKey: Uint8Array): ChainedKey {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
  cipher.setAAD(chainAad(epoch, keyIdOf(key), keyIdOf(prevKey)));
  const ct = Buffer.concat([cipher.update(prevKey), cipher.final(), cipher.getAuthTag()]);
  return { nonce: toBase64Url(nonce), ct: toBase64Url(ct) };
}

/** The previous epoch's key, or null when `chained` does not open to the key named `prevKeyId`. */
export function openChainedKey(key: Uint8Array, epoch: number, chained: ChainedKey, prevKeyId: string): Buffer | null {
  try {
    const ct = fromBase64Url(chained.ct);
    const decipher = createDecipheriv('aes-256-gcm', key, fromBase64Url(chained.nonce), { authTagLength: 16 });
    decipher.setAAD(chainAad(epoch, keyIdOf(key), prevKeyId));
    decipher.setAuthTag(ct.subarray(ct.byteLength - 16));
    const prev = Buffer.concat([decipher.update(ct.subarray(0, ct.byteLength - 16)), decipher.final()]);
    return keyIdOf(prev) === prevKeyId ? prev : null;
  } catch {
    return null;
  }
}
