// Pairing by approval (docs/keys.md): the one-time code a new device shows, the commitment it carries and
// the short authentication string both screens show. Nothing here is secret in transit: the code names a
// rendezvous on the relay and commits to the new device's public keys and a nonce it reveals only after the
// member has committed to the motebit (its genesis hash), so a relay can neither swap the keys nor grind a
// fake motebit whose string matches.
//
// Text form: MBP1-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XX (Crockford base32 of 6 bytes rendezvous id, 10 bytes
// commitment) + "-" + 4 checksum characters. Case, spaces and the letters I, L, O typed for 1, 1, 0 are forgiven.
import { timingSafeEqual, randomBytes } from 'node:crypto';
import { base32crockford } from '@scure/base';
import { sha256 } from '../crypto.ts';
import { textChecksum } from '../checksum.ts';
import type { MemberKey } from './entry.ts';

export const PAIRING_CODE_PREFIX = 'MBP1';
export const RENDEZVOUS_ID_BYTES = 6;
export const COMMITMENT_BYTES = 10;
export const PAIRING_NONCE_BYTES = 16;
const CHECKSUM_DOMAIN = 'motebit/pairing-code/v1';
const CHECKSUM_CHARS = 4;
const COMMIT_DOMAIN = 'motebit/pairing-commit/v1\n';
const SAS_DOMAIN = 'motebit/pairing-sas/v1\n';

/** The pairing code is not valid; the message says what is wrong, in words. */
export class PairingCodeFormatError extends Error {
  override readonly name = 'PairingCodeFormatError';
}

export interface PairingCode {
  readonly rendezvousId: Buffer;
  readonly commitment: Buffer;
}

/** What the new device commits to: its keys and name as the member will see them, and its secret nonce. */
function keysBytes(key: Pick<MemberKey, 'id' | 'sign_key' | 'kem_key' | 'name'>): Buffer {
  return Buffer.from(`${key.id}\n${key.sign_key}\n${key.kem_key}\n${key.name ?? ''}\n`);
}

export function newPairingNonce(): Buffer {
  return randomBytes(PAIRING_NONCE_BYTES);
}

export function newRendezvousId(): Buffer {
  return randomBytes(RENDEZVOUS_ID_BYTES);
}

export function pairingCommitment(key: Pick<MemberKey, 'id' | 'sign_key' | 'kem_key' | 'name'>, nonce: Uint8Array): Buffer {
  return sha256(Buffer.concat([Buffer.from(COMMIT_DOMAIN), keysBytes(key), nonce])).subarray(0, COMMITMENT_BYTES);
}

/** Whether the revealed nonce and the keys the relay served are the ones the code committed to. */
export function commitmentHolds(code: PairingCode, key: Pick<MemberKey, 'id' | 'sign_key' | 'kem_key' | 'name'>, nonce: Uint8Array): boolean {
  return nonce.byteLength === PAIRING_NONCE_BYTES && timingSafeEqual(pairingCommitment(key, nonce), code.commitment);
}

/** The short authentication string: six digits, the same on both screens only if both saw the same motebit and keys. */
export function shortAuthString(genesisHash: string, key: Pick<MemberKey, 'id' | 'sign_key' | 'kem_key' | 'name'>, nonce: Uint8Array): string {
  const digest = sha256(Buffer.concat([Buffer.from(`${SAS_DOMAIN}${genesisHash}\n`), keysBytes(key), nonce]));
  const digits = String(digest.readUInt32BE(0) % 1_000_000).padStart(6, '0');
  return `${digits.slice(0, 3)} ${digits.slice(3)}`;
}

export function formatPairingCode(code: PairingCode): string {
  if (code.rendezvousId.byteLength !== RENDEZVOUS_ID_BYTES || code.commitment.byteLength !== COMMITMENT_BYTES) throw new RangeError('a pairing code holds a 6-byte rendezvous id and a 10-byte commitment');
  const body = base32crockford.encode(Buffer.concat([code.rendezvousId, code.commitment]));
  const grouped = `${PAIRING_CODE_PREFIX}-${body.match(/.{1,4}/g)!.join('-')}`;
  return `${grouped}-${checksum(body)}`;
}

function checksum(body: string): string {
  // textChecksum is base64url; keep only characters a Crockford reader types unambiguously.
  return Buffer.from(textChecksum(CHECKSUM_DOMAIN, body), 'base64url').reduce((text, byte) => text + '0123456789ABCDEFGHJKMNPQRSTVWXYZ'[byte % 32]!, '').slice(0, CHECKSUM_CHARS);
}

export function parsePairingCode(text: string): PairingCode {
  if (/^\s*motebit-pair:/i.test(text)) throw new PairingCodeFormatError('this is an old pairing code (it carries the secret of the motebit); ask the other device for a new code with "motebit-sync join"');
  const cleaned = text
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/[IL]/g, '1')
    .replace(/O/g, '0');
  if (!cleaned.startsWith(PAIRING_CODE_PREFIX)) throw new PairingCodeFormatError(`not a pairing code: it starts with ${PAIRING_CODE_PREFIX}`);
  const rest = cleaned.slice(PAIRING_CODE_PREFIX.length);
  const bodyLength = Math.ceil(((RENDEZVOUS_ID_BYTES + COMMITMENT_BYTES) * 8) / 5);
  if (rest.length !== bodyLength + CHECKSUM_CHARS) throw new PairingCodeFormatError(`a pairing code has ${bodyLength + CHECKSUM_CHARS} characters after ${PAIRING_CODE_PREFIX}, this one has ${rest.length}: part of it is missing or extra`);
  const body = rest.slice(0, bodyLength);
  if (checksum(body) !== rest.slice(bodyLength)) throw new PairingCodeFormatError('the pairing code does not check out: a character is mistyped');
  let bytes: Uint8Array;
  try {
    bytes = base32crockford.decode(body);
  } catch {
    throw new PairingCodeFormatError('the pairing code has characters that are not part of a code');
  }
  if (bytes.byteLength !== RENDEZVOUS_ID_BYTES + COMMITMENT_BYTES) throw new PairingCodeFormatError('the pairing code is damaged');
  const buffer = Buffer.from(bytes);
  return { rendezvousId: buffer.subarray(0, RENDEZVOUS_ID_BYTES), commitment: buffer.subarray(RENDEZVOUS_ID_BYTES) };
}
