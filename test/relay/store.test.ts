// The RelayStore contract on the real SQLite backend (a PostgreSQL backend must pass the same).
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../relay/sqlite-store.ts';
import type { Notification } from '../../relay/store.ts';
import { TestMotebit, tempDir } from './support.ts';

let dir: ReturnType<typeof tempDir>;
let store: SqliteStore;

beforeEach(() => {
  dir = tempDir();
  store = new SqliteStore(join(dir.dir, 'store.db'));
});

afterEach(async () => {
  await store.close();
  dir.cleanup();
});

function enrolInput(motebit: TestMotebit, device = motebit.device()) {
  return { motebitId: motebit.motebitId, identityKey: motebit.identity.publicKey, deviceId: device.deviceId, deviceKey: device.key.publicKey, cert: device.cert, name: null, now: 1 };
}

describe('SqliteStore', () => {
  it('never lets a device id be taken by another key, nor a motebit by another identity', async () => {
    const motebit = new TestMotebit();
    const device = motebit.device();
    expect((await store.enrolDevice(enrolInput(motebit, device))).kind).toBe('created');
    expect((await store.enrolDevice(enrolInput(motebit, device))).kind).toBe('exists');
    const hijacker = motebit.device();
    expect((await store.enrolDevice({ ...enrolInput(motebit, hijacker), deviceId: device.deviceId })).kind).toBe('key_mismatch');
    const impostor = new TestMotebit();
    expect((await store.enrolDevice({ ...enrolInput(impostor), motebitId: motebit.motebitId })).kind).toBe('wrong_identity');
    expect((await store.device(motebit.motebitId, device.deviceId))?.key.equals(device.key.publicKey)).toBe(true);
  });

  it('a revoked device can never be enrolled again, and subscribers hear of the revocation once', async () => {
    const motebit = new TestMotebit();
    const device = motebit.device();
    await store.enrolDevice(enrolInput(motebit, device));
    const heard: Notification[] = [];
    const stop = store.subscribe(motebit.motebitId, (n) => heard.push(n));
    expect((await store.revokeDevice(motebit.motebitId, device.deviceId, 5)).kind).toBe('revoked');
    expect((await store.revokeDevice(motebit.motebitId, device.deviceId, 6)).kind).toBe('already_revoked');
    expect((await store.enrolDevice(enrolInput(motebit, device))).kind).toBe('revoked');
    expect((await store.device(motebit.motebitId, device.deviceId))?.revokedAt).toBe(5);
    expect(heard).toEqual([{ kind: 'revoked', deviceId: device.deviceId }]);
    stop();
  });

  it('scopes everything by motebit: ids, sequences, nonces, notifications', async () => {
    const one = new TestMotebit();
    const two = new TestMotebit();
    const d1 = one.device();
    const d2 = two.device();
    await store.enrolDevice(enrolInput(one, d1));
    await store.enrolDevice(enrolInput(two, d2));
    const heardByTwo: Notification[] = [];
    store.subscribe(two.motebitId, (n) => heardByTwo.push(n));
    const [e1] = d1.events(1);
    const e2 = { ...d2.events(1)[0]!, event_id: e1!.event_id };
    expect((await store.appendBatch(one.motebitId, [e1!])).results).toEqual([{ event_id: e1!.event_id, status: 'stored', seq: 1 }]);
    expect(heardByTwo).toEqual([]);
    expect((await store.appendBatch(two.motebitId, [e2])).results).toEqual([{ event_id: e1!.event_id, status: 'stored', seq: 1 }]);
    expect(heardByTwo).toEqual([{ kind: 'events', events: [{ ...e2, seq: 1 }] }]);
    expect((await store.readAfter(one.motebitId, 0, 10, 1 << 20)).events.map((e) => e.device_id)).toEqual([d1.deviceId]);
    // The same nonce in two motebits (or for two signers) is two nonces; within one, it is single use.
    expect(await store.useNonce(one.motebitId, d1.deviceId, 'n'.repeat(22), 100)).toBe(true);
    expect(await store.useNonce(two.motebitId, d1.deviceId, 'n'.repeat(22), 100)).toBe(true);
    expect(await store.useNonce(one.motebitId, 'identity', 'n'.repeat(22), 100)).toBe(true);
    expect(await store.useNonce(one.motebitId, d1.deviceId, 'n'.repeat(22), 100)).toBe(false);
    // Pruned only after it expired.
    await store.pruneNonces(100);
    expect(await store.useNonce(one.motebitId, d1.deviceId, 'n'.repeat(22), 100)).toBe(false);
    await store.pruneNonces(101);
    expect(await store.useNonce(one.motebitId, d1.deviceId, 'n'.repeat(22), 200)).toBe(true);
  });

  it('pages by count and bytes, always at least one event, and says whether more exist', async () => {
    const motebit = new TestMotebit();
    const device = motebit.device();
    await store.enrolDevice(enrolInput(motebit, device));
    await store.appendBatch(motebit.motebitId, device.events(5, 3000)); // 4000 base64 chars each
    const byCount = await store.readAfter(motebit.motebitId, 0, 2, 1 << 20);
    expect([byCount.events.map((e) => e.seq), byCount.more]).toEqual([[1, 2], true]);
    const byBytes = await store.readAfter(motebit.motebitId, 1, 100, 9000);
    expect([byBytes.events.map((e) => e.seq), byBytes.more]).toEqual([[2, 3], true]);
    const tiny = await store.readAfter(motebit.motebitId, 3, 100, 10);
    expect([tiny.events.map((e) => e.seq), tiny.more]).toEqual([[4], true]);
    const last = await store.readAfter(motebit.motebitId, 4, 100, 1 << 20);
    expect([last.events.map((e) => e.seq), last.more]).toEqual([[5], false]);
    expect(await store.head(motebit.motebitId)).toBe(5);
  });
});
