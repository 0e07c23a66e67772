// A sealed snapshot as the relay stores it: one opaque blob (docs/protocol.md §10). The sealed snapshot's
// canonical JSON is compressed (gzip) and, when the motebit encrypts, sealed with AES-256-GCM under the
// content key its writer holds now (protocol 3: the current epoch's, so only current members can read it),
// bound to the motebit and the snapshot id:
//
//   blob = "MBS1" | key id length (1 byte) | key id (ASCII) | nonce (12) | ciphertext | tag (16)
//   aad  = canonical JSON of { t: "motebit/snapshot-blob/v1", motebit_id, snapshot_id, key_id }
//   blob = "MBP1" | gzip bytes                                  (a motebit with encryption off)
import { gunzipSync, gzipSync } from 'node:zlib';
import { canonicalBytes } from '../encoding.ts';
import { openBody, sealBody, type AesKey } from '../envelope-crypto.ts';
import { SnapshotError } from './content.ts';

const SEALED = Buffer.from('MBS1', 'ascii');
const PLAIN = Buffer.from('MBP1', 'ascii');
/** The most a snapshot's JSON may expand to (a JavaScript string holds about 512 MiB). */
export const MAX_SNAPSHOT_TEXT_BYTES = 512 * 1024 * 1024;

export interface BlobKey {
  readonly id: string;
  readonly key: AesKey;
}

function aad(motebitId: string, snapshotId: string, keyId: string): Buffer {
  return canonicalBytes({ t: 'motebit/snapshot-blob/v1', motebit_id: motebitId, snapshot_id: snapshotId, key_id: keyId });
}

/** The blob for a sealed snapshot's text; `key` null for a motebit that does not encrypt. */
export function encodeSnapshotBlob(text: string, ids: { motebitId: string; snapshotId: string }, key: BlobKey | null): Buffer {
  const packed = gzipSync(Buffer.from(text, 'utf8'), { level: 6 });
  if (key === null) return Buffer.concat([PLAIN, packed]);
  const keyId = Buffer.from(key.id, 'ascii');
  if (keyId.byteLength === 0 || keyId.byteLength > 255) throw new RangeError('a key id is 1 to 255 ASCII characters');
  return Buffer.concat([SEALED, Buffer.of(keyId.byteLength), keyId, sealBody(key.key, packed, aad(ids.motebitId, ids.snapshotId, key.id))]);
}

/**
 * The text of a snapshot blob. `keyById` gives this device's content key for an id (undefined when it has
 * none); `encrypted` says whether this motebit encrypts (a plaintext blob is then refused). Throws
 * SnapshotError ('unreadable') for a blob that does not open, is not one, or expands beyond `maxTextBytes`
 * (a compression bomb is stopped there, before it fills memory).
 */
export function decodeSnapshotBlob(
  blob: Uint8Array,
  ids: { motebitId: string; snapshotId: string },
  keys: { encrypted: boolean; keyById(id: string): AesKey | undefined },
  maxTextBytes: number = MAX_SNAPSHOT_TEXT_BYTES,
): string {
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const magic = bytes.subarray(0, 4);
  let packed: Buffer;
  if (magic.equals(PLAIN)) {
    if (keys.encrypted) throw new SnapshotError('unreadable', 'the snapshot is not encrypted, but this motebit encrypts everything: it was not made by one of its devices');
    packed = bytes.subarray(4);
  } else if (magic.equals(SEALED) && bytes.byteLength > 5) {
    const length = bytes[4]!;
    const keyId = bytes.subarray(5, 5 + length).toString('ascii');
    const key = keys.keyById(keyId);
    if (!key) throw new SnapshotError('unreadable', `the snapshot is encrypted with key ${keyId}, which this device does not have`);
    const opened = openBody(key, bytes.subarray(5 + length), aad(ids.motebitId, ids.snapshotId, keyId));
    if (!opened) throw new SnapshotError('unreadable', 'the snapshot does not open with its key: it was altered, or it is not this snapshot');
    packed = opened;
  } else {
    throw new SnapshotError('unreadable', 'what the relay served is not a snapshot');
  }
  try {
    return gunzipSync(packed, { maxOutputLength: maxTextBytes }).toString('utf8');
  } catch {
    throw new SnapshotError('unreadable', 'the snapshot does not decompress (damaged, or larger than this device reads)');
  }
}
