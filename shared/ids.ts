// Identifiers. A motebit id and a device id are derived from public keys (self-certifying): whoever
// presents the key can be checked against the id, and nobody can claim an id without holding its key.
// Making ids needs Node's crypto; their forms (schemas) are portable: shared/portable/ids.ts.
import { randomBytes, randomUUID } from 'node:crypto';
import { sha256 } from './crypto.ts';

const ID_HASH_BYTES = 16; // 128 bits: collision-free for any number of motebits we will ever see

function idFromKey(prefix: string, publicKey: Uint8Array): string {
  return prefix + sha256(publicKey).subarray(0, ID_HASH_BYTES).toString('base64url');
}

export const motebitIdFromIdentityKey = (identityPublicKey: Uint8Array): string => idFromKey('mb_', identityPublicKey);
export const deviceIdFromDeviceKey = (devicePublicKey: Uint8Array): string => idFromKey('dv_', devicePublicKey);
/** A recovery key's member id in a membership log (shared/membership). */
export const recoveryIdFromKey = (recoveryPublicKey: Uint8Array): string => idFromKey('rk_', recoveryPublicKey);
/** The motebit id a new motebit's genesis entry commits to: derived from the entry's hash like an id from a key. */
export const motebitIdFromGenesisHash = (genesisHash: Uint8Array): string => idFromKey('mb_', genesisHash);

export function newEventId(): string {
  return randomUUID();
}

/** A new relay log's epoch (what one is: LogEpochSchema, shared/portable/ids.ts). */
export function newLogEpoch(): string {
  return `ep_${randomBytes(16).toString('base64url')}`;
}

/** A new snapshot's id: 16 random bytes (SnapshotIdSchema, shared/portable/ids.ts). */
export function newSnapshotId(): string {
  return `sn_${randomBytes(16).toString('base64url')}`;
}
