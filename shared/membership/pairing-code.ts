// Pairing by approval (docs/keys.md): the one-time code a new device shows, the commitment it carries and
// the short authentication string both screens show. Nothing here is secret in transit: the code names a
// rendezvous on the relay and commits to the new device's public keys and a nonce it reveals only after the
// member has committed to the motebit (its genesis hash), so a relay can neither swap the keys nor grind a
// fake motebit whose string matches.
//
// Text form (shared/code-text.ts): MBP1-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XX-CCCC, the 6-byte rendezvous id and
// the 10-byte commitment.
import { timingSafeEqual, randomBytes } from 'node:crypto';
import { sha256 } from '../crypto.ts';
import { CodeTextError, formatCode, parseCode, type CodeKind } from '../code-text.ts';
import type { MemberKey } from './entry.ts';

export const PAIRING_CODE_PREFIX = 'MBP1';
export const RENDEZVOUS_ID_BYTES = 6;
export const COMMITMENT_BYTES = 10;
export const PAIRING_NONCE_BYTES = 16;
const CHECKSUM_DOMAIN = 'motebit/pairing-code/v1';
const COMMIT_DOMAIN = 'motebit/pairing-commit/v1\n';
const SAS_DOMAIN = 'motebit/pairing-sas/v1\n';

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

const PAIRING_CODE: CodeKind = { prefix: PAIRING_CODE_PREFIX, bytes: RENDEZVOUS_ID_BYTES + COMMITMENT_BYTES, domain: CHECKSUM_DOMAIN, name: 'pairing code' };

export function formatPairingCode(code: PairingCode): string {
  if (code.rendezvousId.byteLength !== RENDEZVOUS_ID_BYTES || code.commitment.byteLength !== COMMITMENT_BYTES) throw new RangeError('a pairing code holds a 6-byte rendezvous id and a 10-byte commitment');
  return formatCode(PAIRING_CODE, Buffer.concat([code.rendezvousId, code.commitment]));
}

/** The code's parts; throws CodeTextError (in words) for anything else, and says so for an old protocol-2 code. */
export function parsePairingCode(text: string): PairingCode {
  if (/^\s*motebit-pair:/i.test(text)) throw new CodeTextError('this is an old pairing code (it carries the secret of the motebit); ask the other device for a new code with "motebit-sync join"');
  const bytes = parseCode(PAIRING_CODE, text);
  return { rendezvousId: bytes.subarray(0, RENDEZVOUS_ID_BYTES), commitment: bytes.subarray(RENDEZVOUS_ID_BYTES) };
}
