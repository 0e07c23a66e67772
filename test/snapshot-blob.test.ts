// The snapshot blob (shared/snapshot/blob.ts) and who may seal a snapshot in protocol 3
// (shared/snapshot/signer.ts), each refusal on its own with its words: what the relay serves is untrusted.
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { addEntry, genesisEntry, memberFromSecret, removeEntry } from '../shared/membership/author.ts';
import { applyEntry, verifyLog } from '../shared/membership/log.ts';
import { decodeSnapshotBlob, encodeSnapshotBlob } from '../shared/snapshot/blob.ts';
import { SnapshotError } from '../shared/snapshot/content.ts';
import { membershipSnapshotSigner } from '../shared/snapshot/signer.ts';
import { newSnapshotId } from '../shared/ids.ts';
import { refusal } from './support/refusal.ts';

const ids = { motebitId: 'mb_' + 'a'.repeat(22), snapshotId: newSnapshotId() };
const key = { id: 'k1', key: randomBytes(32) };
const keys = (encrypted: boolean) => ({ encrypted, keyById: (id: string) => (id === key.id ? key.key : undefined) });

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
