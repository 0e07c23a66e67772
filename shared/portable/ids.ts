// The forms of identifiers, as schemas any runtime may import. How ids are made (derived from keys, or
// random) needs Node's crypto: shared/ids.ts.
import { z } from 'zod';

export const MotebitIdSchema = z.string().regex(/^mb_[A-Za-z0-9_-]{22}$/, 'a motebit id is mb_ followed by 22 base64url characters');
export const DeviceIdSchema = z.string().regex(/^dv_[A-Za-z0-9_-]{22}$/, 'a device id is dv_ followed by 22 base64url characters');
/** A recovery key's member id (docs/keys.md): it signs membership entries and its own relay tokens, never events. */
export const RecoveryIdSchema = z.string().regex(/^rk_[A-Za-z0-9_-]{22}$/, 'a recovery key id is rk_ followed by 22 base64url characters');
export const EventIdSchema = z.uuid({ error: 'an event id is a UUID' });
/**
 * A relay log's epoch: a random id made with the log. A relay whose storage was replaced by an empty one
 * reports another epoch, so devices can tell it from the log they synced with.
 */
export const LogEpochSchema = z.string().regex(/^ep_[A-Za-z0-9_-]{22}$/, 'an epoch is ep_ followed by 22 base64url characters');
/** A snapshot's id (docs/protocol.md §7, snapshots): chosen by the device that makes it, 16 random bytes. */
export const SnapshotIdSchema = z.string().regex(/^sn_[A-Za-z0-9_-]{22}$/, 'a snapshot id is sn_ followed by 22 base64url characters');
