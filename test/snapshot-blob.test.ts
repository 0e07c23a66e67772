// The snapshot blob (shared/snapshot/blob.ts) and who may seal a snapshot in protocol 3
// (shared/snapshot/signer.ts), each refusal on its own with its words: what the relay serves is untrusted.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as noble from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import { signingKeyFromSeed } from '../shared/crypto.ts';
import { addEntry, genesisEntry, memberFromSecret, removeEntry } from '../shared/membership/author.ts';
import { applyEntry, verifyLog } from '../shared/membership/log.ts';
import { decodeSnapshotBlob, encodeSnapshotBlob, MAX_SNAPSHOT_TEXT_BYTES } from '../shared/snapshot/blob.ts';
import { sealSnapshot, SnapshotContentSchema, SnapshotError } from '../shared/snapshot/content.ts';
import { membershipSnapshotSigner } from '../shared/snapshot/signer.ts';
import { deviceIdFromDeviceKey, newSnapshotId } from '../shared/ids.ts';
import { refusal } from './support/refusal.ts';

const ids = { motebitId: 'mb_' + 'a'.repeat(22), snapshotId: newSnapshotId() };
const key = { id: 'k1', key: randomBytes(32) };
const keys = (encrypted: boolean) => ({ encrypted, keyById: (id: string) => (id === key.id ? key.key : undefined) });

noble.hashes.sha512 = (message: Uint8Array) => new Uint8Array(createHash('sha512').update(message).digest());

const refused = (run: () => unknown): SnapshotError => refusal(SnapshotError, run, 'the blob was accepted');

describe('a snapshot blob', () => {
  it('round-trips, plain and sealed', () => {
    const text = JSON.stringify({ some: 'snapshot', n: 1 });
    expect(decodeSnapshotBlob(encodeSnapshotBlob(text, ids, null), ids, keys(false))).toBe(text);
    const sealed = encodeSnapshotBlob(text, ids, key);
    expect(sealed.subarray(0, 4).toString('ascii')).toBe('MBS1');
    expect(sealed.includes(Buffer.from(text))).toBe(false);
    expect(decodeSnapshotBlob(sealed, ids, keys(true))).toBe(text);
  });

  it('is refused, saying why: plain for a motebit that encrypts, a key this device lacks, another snapshot\'s, not a blob, not gzip', () => {
    const text = '{}';
    const plain = refused(() => decodeSnapshotBlob(encodeSnapshotBlob(text, ids, null), ids, keys(true)));
    expect([plain.fault, plain.message]).toEqual(['unreadable', 'the snapshot is not encrypted, but this motebit encrypts everything: it was not made by one of its devices']);
    const unknown = refused(() => decodeSnapshotBlob(encodeSnapshotBlob(text, ids, { id: 'k9', key: randomBytes(32) }), ids, keys(true)));
    expect([unknown.fault, unknown.message]).toEqual(['unreadable', 'the snapshot is encrypted with key k9, which this device does not have']);
    const moved = refused(() => decodeSnapshotBlob(encodeSnapshotBlob(text, ids, key), { ...ids, snapshotId: newSnapshotId() }, keys(true)));
    expect([moved.fault, moved.message]).toEqual(['unreadable', 'the snapshot does not open with its key: it was altered, or it is not this snapshot']);
    for (const junk of [Buffer.from('hello world'), Buffer.from('MBS1'), Buffer.from('MBS1\u0000')]) {
      const error = refused(() => decodeSnapshotBlob(junk, ids, keys(true)));
      expect([error.fault, error.message]).toEqual(['unreadable', 'what the relay served is not a snapshot']);
    }
    const notGzip = refused(() => decodeSnapshotBlob(Buffer.concat([Buffer.from('MBP1'), Buffer.from('not gzip')]), ids, keys(false)));
    expect([notGzip.fault, notGzip.message]).toEqual(['unreadable', 'the snapshot does not decompress (damaged, or larger than this device reads)']);
    expect(decodeSnapshotBlob(Buffer.concat([Buffer.from('MBP1'), gzipSync('[1]')]), ids, keys(false))).toBe('[1]');
  });

  it('names its key in 1 to 255 ASCII characters', () => {
    expect(() => encodeSnapshotBlob('{}', ids, { id: '', key: key.key })).toThrow('a key id is 1 to 255 ASCII characters');
    expect(() => encodeSnapshotBlob('{}', ids, { id: 'k'.repeat(256), key: key.key })).toThrow(RangeError);
    const longest = { id: 'k'.repeat(255), key: key.key };
    expect(decodeSnapshotBlob(encodeSnapshotBlob('{}', ids, longest), ids, { encrypted: true, keyById: (id) => (id === longest.id ? key.key : undefined) })).toBe('{}');
  });
});

describe('who may seal a snapshot (protocol 3)', () => {
  it('a current device member with its own key and no certificate; not the recovery key, a removed device, a stranger', async () => {
    const laptop = memberFromSecret('device', randomBytes(32), 'laptop');
    const phone = memberFromSecret('device', randomBytes(32), 'phone');
    const recovery = memberFromSecret('recovery', randomBytes(32), null);
    const { entry, contentKey } = await genesisEntry(laptop, recovery.key, 1000);
    let state = verifyLog([entry]);
    state = applyEntry(state, await addEntry(state, laptop, phone.key, contentKey, 2000));
    const signer = membershipSnapshotSigner(state);
    const sealOf = (member: typeof laptop) => ({ key: member.key.sign_key, sig: 'A'.repeat(86) });
    expect(signer(laptop.key.id, sealOf(laptop))).toBeNull();
    expect(signer(phone.key.id, sealOf(phone))).toBeNull();
    expect(signer(laptop.key.id, sealOf(phone))).toBe('device_key_mismatch');
    expect(signer(laptop.key.id, { ...sealOf(laptop), cert: 'A'.repeat(86) })).toBe('bad_device_cert');
    expect(signer(recovery.key.id, sealOf(recovery))).toBe('not_member');
    expect(signer(memberFromSecret('device', randomBytes(32), 'stranger').key.id, sealOf(laptop))).toBe('not_member');
    const removed = applyEntry(state, (await removeEntry(state, laptop, phone.key.id, 0, contentKey, 3000)).entry);
    expect(membershipSnapshotSigner(removed)(phone.key.id, sealOf(phone))).toBe('not_member');
    expect(membershipSnapshotSigner(removed)(laptop.key.id, sealOf(laptop))).toBeNull();
  });
});

// The wire format built by hand from docs/protocol.md §10, with node:crypto and @noble/ed25519 alone: a blob or
// a seal our code makes must be what the text says, byte for byte, and what the text says must be read.
describe('the snapshot wire format, as docs/protocol.md §10 writes it', () => {
  const motebitId = 'mb_' + 'Q'.repeat(22);
  const snapshotId = 'sn_' + 'w'.repeat(22);
  const text = '{"snapshot":"text"}';
  // The associated data: canonical JSON (keys sorted) of {t, motebit_id, snapshot_id, key_id}.
  const aadText = `{"key_id":"k1","motebit_id":"${motebitId}","snapshot_id":"${snapshotId}","t":"motebit/snapshot-blob/v1"}`;

  it('a blob is "MBS1" | key id length | key id | nonce | AES-256-GCM of the gzip text, bound to motebit, snapshot and key', () => {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key.key, nonce);
    cipher.setAAD(Buffer.from(aadText));
    const body = Buffer.concat([cipher.update(gzipSync(text)), cipher.final()]);
    const byHand = Buffer.concat([Buffer.from('MBS1'), Buffer.of(2), Buffer.from('k1'), nonce, body, cipher.getAuthTag()]);
    expect(decodeSnapshotBlob(byHand, { motebitId, snapshotId }, keys(true))).toBe(text);

    const ours = encodeSnapshotBlob(text, { motebitId, snapshotId }, key);
    expect(ours.subarray(0, 7).toString('latin1')).toBe('MBS1\u0002k1');
    const sealed = ours.subarray(7);
    const decipher = createDecipheriv('aes-256-gcm', key.key, sealed.subarray(0, 12));
    decipher.setAAD(Buffer.from(aadText));
    decipher.setAuthTag(sealed.subarray(sealed.byteLength - 16));
    const packed = Buffer.concat([decipher.update(sealed.subarray(12, sealed.byteLength - 16)), decipher.final()]);
    expect(gunzipSync(packed).toString('utf8')).toBe(text);
  });

  it('a plain blob is "MBP1" | gzip; it expands to no more than the limit, which stops a compression bomb', () => {
    const ours = encodeSnapshotBlob(text, { motebitId, snapshotId }, null);
    expect(ours.subarray(0, 4).toString('latin1')).toBe('MBP1');
    expect(gunzipSync(ours.subarray(4)).toString('utf8')).toBe(text);
    expect(MAX_SNAPSHOT_TEXT_BYTES).toBe(512 * 1024 * 1024);
    const bomb = Buffer.concat([Buffer.from('MBP1'), gzipSync(Buffer.alloc(1024 * 1024, 0x20))]); // 1 MiB of spaces in about 1 KiB
    expect(bomb.byteLength).toBeLessThan(4096);
    expect(decodeSnapshotBlob(bomb, { motebitId, snapshotId }, keys(false), 1024 * 1024)).toHaveLength(1024 * 1024);
    const error = refused(() => decodeSnapshotBlob(bomb, { motebitId, snapshotId }, keys(false), 1024 * 1024 - 1));
    expect([error.fault, error.message]).toEqual(['unreadable', 'the snapshot does not decompress (damaged, or larger than this device reads)']);
  });

  it('a seal signs the canonical JSON of {t: "motebit/snapshot-seal/v1", motebit_id, device_id, snapshot_id, content: SHA-256 of the canonical content}', () => {
    const seed = randomBytes(32);
    const deviceKey = signingKeyFromSeed(seed);
    const deviceId = deviceIdFromDeviceKey(deviceKey.publicKey);
    const digest = 'd'.repeat(64);
    const content = SnapshotContentSchema.parse({ t: 'motebit/snapshot/v1', motebit_id: motebitId, device_id: deviceId, snapshot_id: snapshotId, created_at: 1_700_000_000_000, heads: [], claims: {}, relay: null, events: [], conflicts: [], state_digest: digest });
    const contentText = `{"claims":{},"conflicts":[],"created_at":1700000000000,"device_id":"${deviceId}","events":[],"heads":[],"motebit_id":"${motebitId}","relay":null,"snapshot_id":"${snapshotId}","state_digest":"${digest}","t":"motebit/snapshot/v1"}`;
    const contentHash = createHash('sha256').update(contentText).digest('hex');
    const message = Buffer.from(`{"content":"${contentHash}","device_id":"${deviceId}","motebit_id":"${motebitId}","snapshot_id":"${snapshotId}","t":"motebit/snapshot-seal/v1"}`);
    const { seal } = sealSnapshot(content, { deviceKey, cert: null });
    expect(seal).toEqual({ key: deviceKey.publicKey.toString('base64url'), sig: Buffer.from(noble.sign(message, seed)).toString('base64url') });
  });
});
