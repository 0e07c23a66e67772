// Identifiers. A motebit id and a device id are derived from public keys (self-certifying): whoever
// presents the key can be checked against the id, and nobody can claim an id without holding its key.
import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
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

export const MotebitIdSchema = z.string().regex(/^mb_[A-Za-z0-9_-]{22}$/, 'a motebit id is mb_ followed by 22 base64url characters');
export const DeviceIdSchema = z.string().regex(/^dv_[A-Za-z0-9_-]{22}$/, 'a device id is dv_ followed by 22 base64url characters');
/** A recovery key's member id (docs/keys.md): it signs membership entries and its own relay tokens, never events. */
export const RecoveryIdSchema = z.string().regex(/^rk_[A-Za-z0-9_-]{22}$/, 'a recovery key id is rk_ followed by 22 base64url characters');
export const EventIdSchema = z.uuid({ error: 'an event id is a UUID' });

export function newEventId(): string {
  return randomUUID();
}

/**
 * A relay log's epoch: a random id made with the log. A relay whose storage was replaced by an empty one
 * reports another epoch, so devices can tell it from the log they synced with.
 */
export const LogEpochSchema = z.string().regex(/^ep_[A-Za-z0-9_-]{22}$/, 'an epoch is ep_ followed by 22 base64url characters');

export function newLogEpoch(): string {
  return `ep_${randomBytes(16).toString('base64url')}`;
}

/** A snapshot's id (docs/protocol.md §7, snapshots): chosen by the device that makes it, 16 random bytes. */
export const SnapshotIdSchema = z.string().regex(/^sn_[A-Za-z0-9_-]{22}$/, 'a snapshot id is sn_ followed by 22 base64url characters');

export function newSnapshotId(): string {
  return `sn_${randomBytes(16).toString('base64url')}`;
}
