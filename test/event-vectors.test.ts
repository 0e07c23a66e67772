// What an event, an id and a seal are, byte for byte, against references written out here with node:crypto
// and hand-written canonical JSON (never the code they check): another implementation that follows
// docs/protocol.md must compute the same ids, hashes and signed messages, so each format is pinned.
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signingKeyFromSeed } from '../shared/crypto.ts';
import { canonicalBytes, canonicalJson, fromBase64Url, toBase64Url } from '../shared/encoding.ts';
import { certifyDevice, checkSeal, checkSealSignature, hashEvent, payloadSize, sealEvent, unsealed, verifyDeviceCert } from '../shared/event.ts';
import { deviceIdFromDeviceKey, motebitIdFromGenesisHash, motebitIdFromIdentityKey, newEventId, newLogEpoch, newSnapshotId, recoveryIdFromKey } from '../shared/ids.ts';
import { base64UrlPattern, isCanonicalBase64Url } from '../shared/portable/base64url.ts';
import { EventSchema, GENESIS_HASH, JsonValueSchema, type SealedEvent } from '../shared/portable/event.ts';
import { MAX_PAYLOAD_DEPTH, jsonTextDepth, jsonValueDepth } from '../shared/portable/json-bounds.ts';

const sha256 = (bytes: Uint8Array | string): Buffer => createHash('sha256').update(bytes).digest();
const idOf = (prefix: string, bytes: Uint8Array): string => prefix + sha256(bytes).subarray(0, 16).toString('base64url');
const verifies = (publicKey: Uint8Array, message: string, signature: string): boolean =>
  verify(null, Buffer.from(message), createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' }), Buffer.from(signature, 'base64url'));

describe('event, id and seal formats', () => {
  it('ids: a prefix and the first 16 bytes of the SHA-256 of the key, base64url; random ids of their documented forms', () => {
    const key = Buffer.alloc(32, 9);
    expect(deviceIdFromDeviceKey(key)).toBe(idOf('dv_', key));
    expect(motebitIdFromIdentityKey(key)).toBe(idOf('mb_', key));
    expect(recoveryIdFromKey(key)).toBe(idOf('rk_', key));
    expect(motebitIdFromGenesisHash(key)).toBe(idOf('mb_', key));
    expect(newEventId()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(newLogEpoch()).toMatch(/^ep_[A-Za-z0-9_-]{22}$/);
    expect(newSnapshotId()).toMatch(/^sn_[A-Za-z0-9_-]{22}$/);
    expect(new Set([newLogEpoch(), newLogEpoch(), newSnapshotId(), newSnapshotId()]).size).toBe(4);
  });

  it("an event's hash is the SHA-256 of its canonical JSON without the seal; the seal signs the documented message", () => {
    const deviceKey = signingKeyFromSeed(randomBytes(32));
    const deviceId = deviceIdFromDeviceKey(deviceKey.publicKey);
    const motebitId = 'mb_AAAAAAAAAAAAAAAAAAAAAA';
    const event: SealedEvent = { v: 1, motebit_id: motebitId, device_id: deviceId, event_id: '00000000-0000-4000-8000-000000000001', device_seq: 1, prev: GENESIS_HASH, clock: { l: 3, v: { [deviceId]: 1 } }, entity: 'note/é', op: 'set', payload: { b: [1, 2.5, null], a: 'x' }, ts: 17 };
    const text = `{"clock":{"l":3,"v":{"${deviceId}":1}},"device_id":"${deviceId}","device_seq":1,"entity":"note/é","event_id":"00000000-0000-4000-8000-000000000001","motebit_id":"${motebitId}","op":"set","payload":{"a":"x","b":[1,2.5,null]},"prev":"${GENESIS_HASH}","ts":17,"v":1}`;
    const hash = sha256(Buffer.from(text, 'utf8')).toString('hex');
    expect(hashEvent(event)).toBe(hash);
    const sealed = sealEvent(event, { deviceKey, cert: null });
    expect(hashEvent(sealed)).toBe(hash);
    expect(unsealed(sealed)).toEqual(event);
    expect(unsealed(event)).toBe(event);
    expect(sealed.seal).toEqual({ key: toBase64Url(deviceKey.publicKey), sig: expect.any(String) });
    expect(verifies(deviceKey.publicKey, `{"device_id":"${deviceId}","device_seq":1,"hash":"${hash}","motebit_id":"${motebitId}","t":"motebit/seal/v1"}`, sealed.seal!.sig)).toBe(true);
    // A device certificate: the identity key signs the documented message, and only that motebit, device and key.
    const identity = signingKeyFromSeed(randomBytes(32));
    const cert = certifyDevice(identity, motebitId, deviceKey.publicKey);
    const key = toBase64Url(deviceKey.publicKey);
    expect(verifies(identity.publicKey, `{"device_id":"${deviceId}","key":"${key}","motebit_id":"${motebitId}","t":"motebit/device-cert/v1"}`, cert)).toBe(true);
    expect(verifyDeviceCert(identity.publicKey, motebitId, deviceId, key, cert)).toBe(true);
    expect(verifyDeviceCert(identity.publicKey, 'mb_BBBBBBBBBBBBBBBBBBBBBB', deviceId, key, cert)).toBe(false);
    expect(sealEvent(event, { deviceKey, cert }).seal).toEqual({ key, cert, sig: sealed.seal!.sig });
    expect(payloadSize({ b: 1, a: 'é' })).toBe(Buffer.byteLength('{"a":"é","b":1}'));
  });

  it('encodings: canonical JSON refuses what has no JSON form; base64url reads and writes exactly the bytes given', () => {
    expect(() => canonicalJson(undefined)).toThrow(new TypeError('value has no canonical JSON form'));
    expect(canonicalBytes({ z: 1, a: [true] }).toString('utf8')).toBe('{"a":[true],"z":1}');
    expect(toBase64Url(Buffer.from([0, 0xfb, 0xff, 0x01]).subarray(1, 3))).toBe('-_8');
    expect(fromBase64Url('-_8')).toEqual(Buffer.from([0xfb, 0xff]));
    expect('A'.repeat(43)).toMatch(base64UrlPattern(32));
    expect('A'.repeat(42)).not.toMatch(base64UrlPattern(32));
    expect('A'.repeat(44)).not.toMatch(base64UrlPattern(32));
    expect('A'.repeat(86)).toMatch(base64UrlPattern(64));
    expect(['', 'QQ', 'QUE', 'QUFB', 'AA-_'].map(isCanonicalBase64Url)).toEqual([true, true, true, true, true]);
    expect(['Q', 'QR', 'QUF', 'QQ==', 'A+/A', 'AAAAA'].map(isCanonicalBase64Url)).toEqual([false, false, false, false, false, false]);
  });

  it('JSON depth: brackets in strings do not count, escaped quotes do not end them, past the limit is Infinity', () => {
    expect(jsonTextDepth('[[], {"a": [1]}]', 10)).toBe(3);
    expect(jsonTextDepth('["[[[", "\\"[[", "\\\\", [[]]]', 10)).toBe(3);
    expect(jsonTextDepth('[[[]]]', 2)).toBe(Infinity);
    expect(jsonTextDepth('[[[]]]', 3)).toBe(3);
    expect(jsonTextDepth('[["unterminated [[[', 10)).toBe(2);
    expect(jsonValueDepth({ a: [1, { b: 2 }] }, 10)).toBe(3);
    expect(jsonValueDepth({ a: [1, { b: 2 }] }, 2)).toBe(Infinity);
    expect(jsonValueDepth([[], [1]], 2)).toBe(2);
    expect(jsonValueDepth([{}, [[]]], 10)).toBe(3); // a shallow item walked after a deep one keeps the deepest
    expect([null, 5, 'x'].map((v) => jsonValueDepth(v, 0))).toEqual([0, 0, 0]);
  });

  it('a seal that is missing or has no certificate is named, not thrown', () => {
    const deviceKey = signingKeyFromSeed(randomBytes(32));
    const identity = signingKeyFromSeed(randomBytes(32));
    const deviceId = deviceIdFromDeviceKey(deviceKey.publicKey);
    const event: SealedEvent = { v: 1, motebit_id: 'mb_AAAAAAAAAAAAAAAAAAAAAA', device_id: deviceId, event_id: '00000000-0000-4000-8000-000000000001', device_seq: 1, prev: GENESIS_HASH, clock: { l: 1, v: { [deviceId]: 1 } }, entity: 'n', op: 'set', payload: 1, ts: 1 };
    const hash = hashEvent(event);
    expect(checkSeal(event, hash, identity.publicKey)).toBe('bad_signature');
    expect(checkSealSignature(event, hash, deviceKey.publicKey)).toBe('bad_signature');
    expect(checkSeal(sealEvent(event, { deviceKey, cert: null }), hash, identity.publicKey)).toBe('bad_device_cert');
    const cert = certifyDevice(identity, event.motebit_id, deviceKey.publicKey);
    expect(checkSeal(sealEvent(event, { deviceKey, cert }), hash, identity.publicKey)).toBeNull();
    expect(checkSeal(sealEvent(event, { deviceKey, cert }), hash, identity.publicKey)).toBeNull(); // the certificate, now remembered
  });
});

describe('event schema', () => {
  const deviceId = 'dv_' + 'A'.repeat(22);
  const base = { v: 1, motebit_id: 'mb_' + 'A'.repeat(22), device_id: deviceId, event_id: '00000000-0000-4000-8000-000000000001', device_seq: 2, prev: GENESIS_HASH, clock: { l: 2, v: { [deviceId]: 2 } }, entity: 'n', op: 'set', payload: 1, ts: 1 };
  const issues = (event: object) => {
    const parsed = EventSchema.safeParse(event);
    return parsed.success ? [] : parsed.error.issues.map((i) => `${i.code} ${i.path.join('.')}: ${i.message}`);
  };

  it('names each broken invariant: the clock at the own sequence, a delete with a payload, a payload too deep', () => {
    expect(issues(base)).toEqual([]);
    expect(issues({ ...base, clock: { l: 2, v: { [deviceId]: 1 } } })).toEqual(['custom clock.v: the clock must name the writing device at its own sequence']);
    expect(issues({ ...base, op: 'delete' })).toEqual(['custom payload: a delete carries a null payload']);
    expect(issues({ ...base, op: 'delete', payload: null })).toEqual([]);
    let deep: unknown = 1;
    for (let i = 0; i < MAX_PAYLOAD_DEPTH; i++) deep = [deep];
    expect(issues({ ...base, payload: deep })).toEqual([]);
    expect(issues({ ...base, payload: [deep] })).toEqual([`custom payload: a payload is nested at most ${MAX_PAYLOAD_DEPTH} deep`]);
  });

  it('takes a payload exactly when z.json() does, and returns the same value', () => {
    const symbolKeyed = { a: 1, [Symbol('s')]: 2 };
    const protoKeyed = JSON.parse('{"__proto__": 1, "a": 2}') as unknown;
    class Sub extends Array {}
    const payloads: unknown[] = [1, 'x', true, null, [1, [2]], { a: { b: [null] } }, Number.NaN, Number.POSITIVE_INFINITY, [1, , 3], symbolKeyed, protoKeyed, Object.create(null), Sub.from([1]), new Date(0), undefined, () => 1, 10n];
    for (const [index, payload] of payloads.entries()) {
      const ours = EventSchema.safeParse({ ...base, payload });
      const reference = JsonValueSchema.safeParse(payload);
      expect(ours.success, `payload ${index}`).toBe(reference.success);
      if (ours.success && reference.success) expect(JSON.stringify(ours.data.payload)).toBe(JSON.stringify(reference.data));
    }
  });
});
