// Who may seal a snapshot a device accepts (shared/snapshot/content.ts, SnapshotSigner): a current writer of
// the motebit, by the rule each protocol already has for who may write events.
import { fromBase64Url } from '../encoding.ts';
import { verifyDeviceCert } from '../event.ts';
import { deviceIdFromDeviceKey } from '../ids.ts';
import type { MembershipState } from '../membership/log.ts';
import type { SnapshotSigner } from './content.ts';

/** Protocol 2: a device the motebit's identity key certified. */
export function identitySnapshotSigner(motebitId: string, identityPublicKey: Uint8Array): SnapshotSigner {
  return (deviceId, seal) => {
    if (deviceIdFromDeviceKey(fromBase64Url(seal.key)) !== deviceId) return 'device_key_mismatch';
    if (seal.cert === undefined || !verifyDeviceCert(identityPublicKey, motebitId, deviceId, seal.key, seal.cert)) return 'bad_device_cert';
    return null;
  };
}

/** Protocol 3: a device that is a member of the verified log now (not removed), with the key it records. */
export function membershipSnapshotSigner(state: MembershipState): SnapshotSigner {
  return (deviceId, seal) => {
    const member = state.members.get(deviceId);
    if (!member || member.key.role !== 'device' || member.removedAt !== null) return 'not_member';
    if (seal.key !== member.key.sign_key) return 'device_key_mismatch';
    if (seal.cert !== undefined) return 'bad_device_cert';
    return null;
  };
}
