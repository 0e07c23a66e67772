// A device's signed acknowledgement (docs/protocol.md §7, "Snapshots and compaction"): which events it
// has applied, as a version vector { device_id: highest device_seq }, signed by its own device key. The
// relay keeps each device's newest one and compacts only what every live device acknowledged; it serves
// them back, so any device can check that a compaction was justified.
import { verifySignature, type SigningKey } from './crypto.ts';
import { canonicalBytes, fromBase64Url, toBase64Url } from './encoding.ts';

export const ACK_TYPE = 'motebit/ack/v1';

/** What an acknowledgement says: who, about which motebit, what it covers, and when (Unix ms). */
export interface AckStatement {
  motebitId: string;
  deviceId: string;
  covers: Readonly<Record<string, number>>;
  at: number;
}

/** The bytes a device signs: the canonical JSON (RFC 8785) of {t, motebit_id, device_id, covers, at}. */
export function ackBytes(ack: AckStatement): Buffer {
  return canonicalBytes({ t: ACK_TYPE, motebit_id: ack.motebitId, device_id: ack.deviceId, covers: ack.covers, at: ack.at });
}

/** The device's base64url Ed25519 signature over ackBytes. */
export function signAck(deviceKey: SigningKey, ack: AckStatement): string {
  return toBase64Url(deviceKey.sign(ackBytes(ack)));
}

/** True only when `sig` is the signature of the device key `publicKey` over this acknowledgement. */
export function verifyAck(publicKey: Uint8Array, ack: AckStatement, sig: string): boolean {
  return verifySignature(publicKey, ackBytes(ack), fromBase64Url(sig));
}

/** Whether `ack` covers every writer of `covers` at least as far (a writer `ack` does not name counts as 0). */
export function coversAll(ack: Readonly<Record<string, number>>, covers: Readonly<Record<string, number>>): boolean {
  return Object.entries(covers).every(([deviceId, seq]) => (Object.hasOwn(ack, deviceId) ? (ack[deviceId] ?? 0) : 0) >= seq);
}
