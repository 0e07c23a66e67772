// The RelayStore contract: run unchanged on SQLite and on PostgreSQL (test/support/test-db.ts picks).
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Notification, RelayStore } from '../../relay/store.ts';
import { TEST_STORE, openTestStore } from '../support/test-db.ts';
import { TestMotebit, tempDir } from './support.ts';

let dir: ReturnType<typeof tempDir>;
let store: RelayStore;

beforeEach(async () => {
  dir = tempDir();
  store = await openTestStore(join(dir.dir, 'store.db'));
});

afterEach(async () => {
  await store.close();
  dir.cleanup();
});

function enrolInput(motebit: TestMotebit, device = motebit.device()) {
  return { motebitId: motebit.motebitId, identityKey: motebit.identity.publicKey, deviceId: device.deviceId, deviceKey: device.key.publicKey, cert: device.cert, name: null, now: 1 };
}

describe(`RelayStore on ${TEST_STORE}`, () => {
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

  it('stores each writer gap-free and idempotently: duplicate, taken id, conflict, gap, in-batch repeat', async () => {
    const motebit = new TestMotebit();
    const [a, b] = [motebit.device('a'), motebit.device('b')];
    await store.enrolDevice(enrolInput(motebit, a));
    await store.enrolDevice(enrolInput(motebit, b));
    const [a1, a2, a3] = a.events(3);
    const [b1] = b.events(1);
    // b1 is pushed by a (re-seeding); a1 comes twice in one batch.
    const first = await store.appendBatch(motebit.motebitId, [a1!, b1!, a1!]);
    expect(first.results).toEqual([
      { event_id: a1!.event_id, status: 'stored', seq: 1 },
      { event_id: b1!.event_id, status: 'stored', seq: 2 },
      { event_id: a1!.event_id, status: 'duplicate', seq: 1 },
    ]);
    expect(first.head).toBe(2);
    const taken = { ...b.events(1)[0]!, event_id: a1!.event_id };
    const conflict = { ...a2!, event_id: `${a2!.event_id.slice(0, -1)}${a2!.event_id.endsWith('A') ? 'B' : 'A'}`, device_seq: 1 };
    const second = await store.appendBatch(motebit.motebitId, [a1!, taken, conflict, a3!, a2!]);
    expect(second.results).toEqual([
      { event_id: a1!.event_id, status: 'duplicate', seq: 1 },
      { event_id: a1!.event_id, status: 'rejected', reason: 'event_id_taken' },
      { event_id: conflict.event_id, status: 'rejected', reason: 'device_seq_conflict' },
      { event_id: a3!.event_id, status: 'rejected', reason: 'device_seq_gap' },
      { event_id: a2!.event_id, status: 'stored', seq: 3 },
    ]);
    const frontier = await store.frontier(motebit.motebitId, 2);
    expect(frontier.head).toBe(3);
    expect(frontier.epoch).toMatch(/^ep_/);
    expect(frontier.devices).toEqual([{ deviceId: a.deviceId, seq: 2 }, { deviceId: b.deviceId, seq: 1 }].sort((x, y) => (x.deviceId < y.deviceId ? -1 : 1)));
    expect(frontier.at).toEqual({ seq: 2, eventId: b1!.event_id });
    expect((await store.frontier(motebit.motebitId, 99)).at).toEqual({ seq: 99, eventId: null });
    const page = await store.readAfter(motebit.motebitId, 0, 10, 1 << 20);
    expect(page.events.map((e) => [e.seq, e.event_id])).toEqual([[1, a1!.event_id], [2, b1!.event_id], [3, a2!.event_id]]);
    expect([page.head, page.epoch]).toEqual([3, frontier.epoch]);
    expect(await store.usage(motebit.motebitId)).toEqual({ events: 3, bytes: a1!.body.length + b1!.body.length + a2!.body.length, devices: 2 });
  });

  it('refuses a whole batch that would go over a quota, stores nothing of it, and counts only what is stored', async () => {
    const motebit = new TestMotebit();
    const device = motebit.device();
    await store.enrolDevice(enrolInput(motebit, device));
    const events = device.events(4, 30); // 40 base64 characters each
    const quota = { maxEvents: 3, maxBytes: 1000 };
    expect((await store.appendBatch(motebit.motebitId, events.slice(0, 2), quota)).results.map((r) => r.status)).toEqual(['stored', 'stored']);
    // A repeat costs nothing: duplicates are not stored again.
    expect((await store.appendBatch(motebit.motebitId, events.slice(0, 2), quota)).refused).toBeUndefined();
    const over = await store.appendBatch(motebit.motebitId, events.slice(2, 4), quota);
    expect(over).toMatchObject({ refused: 'stored_events', results: [], head: 2 });
    expect(await store.head(motebit.motebitId)).toBe(2);
    expect(await store.usage(motebit.motebitId)).toMatchObject({ events: 2, bytes: 80 });
    const bytes = await store.appendBatch(motebit.motebitId, events.slice(2, 3), { maxEvents: 100, maxBytes: 100 });
    expect(bytes).toMatchObject({ refused: 'stored_bytes', results: [] });
    expect((await store.appendBatch(motebit.motebitId, events.slice(2, 3), { maxEvents: 100, maxBytes: 120 })).results).toEqual([{ event_id: events[2]!.event_id, status: 'stored', seq: 3 }]);
    // Devices: revoked ones do not count.
    const second = motebit.device();
    expect((await store.enrolDevice({ ...enrolInput(motebit, second), maxDevices: 1 })).kind).toBe('quota_exceeded');
    await store.revokeDevice(motebit.motebitId, device.deviceId, 2);
    expect((await store.enrolDevice({ ...enrolInput(motebit, second), maxDevices: 1 })).kind).toBe('created');
    expect((await store.usage(motebit.motebitId)).devices).toBe(1);
  });
});

describe(`several ${TEST_STORE} stores on one database (as several relay instances)`, () => {
  it('keeps seqs gap-free and ordered under concurrent pushes, and a nonce single-use, across stores', async () => {
    const others = [await openTestStore(join(dir.dir, 'store.db')), await openTestStore(join(dir.dir, 'store.db'))];
    try {
      const stores = [store, ...others];
      const motebit = new TestMotebit();
      const writers = Array.from({ length: 6 }, (_, i) => motebit.device(`w${i}`));
      for (const writer of writers) await stores[0]!.enrolDevice(enrolInput(motebit, writer));
      // Each writer pushes 20 batches of 5 in order through its own store; the writers run at once.
      await Promise.all(
        writers.map(async (writer, i) => {
          for (let batch = 0; batch < 20; batch++) {
            const result = await stores[i % stores.length]!.appendBatch(motebit.motebitId, writer.events(5));
            expect(result.results.every((r) => r.status === 'stored')).toBe(true);
          }
        }),
      );
      const all = (await store.readAfter(motebit.motebitId, 0, 1000, 1 << 30)).events;
      expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
      for (const writer of writers) {
        expect(all.filter((e) => e.device_id === writer.deviceId).map((e) => e.device_seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      }
      expect(await others[1]!.head(motebit.motebitId)).toBe(600);
      // The same nonce offered to every store at once: exactly one accepts it.
      const spent = await Promise.all(stores.map((s) => s.useNonce(motebit.motebitId, writers[0]!.deviceId, 'z'.repeat(22), 2 ** 40)));
      expect(spent.filter(Boolean)).toHaveLength(1);
      // A revocation made through one store is what every other store reads.
      await others[0]!.revokeDevice(motebit.motebitId, writers[1]!.deviceId, 9);
      expect((await others[1]!.device(motebit.motebitId, writers[1]!.deviceId))?.revokedAt).toBe(9);
    } finally {
      for (const other of others) await other.close();
    }
  });
});

describe(`last seen and read position per device on ${TEST_STORE}`, () => {
  it('starts unseen, only ever moves forward, is scoped by motebit, and ignores devices it does not know', async () => {
    const motebit = new TestMotebit();
    const [a, b] = [motebit.device('a'), motebit.device('b')];
    await store.enrolDevice(enrolInput(motebit, a));
    await store.enrolDevice(enrolInput(motebit, b));
    const other = new TestMotebit();
    const stranger = other.device();
    await store.enrolDevice(enrolInput(other, stranger));
    const seen = async (m: TestMotebit) => Object.fromEntries((await store.devices(m.motebitId)).map((d) => [d.deviceId, { at: d.lastSeenAt, read: d.readSeq }]));

    expect(await seen(motebit)).toEqual({ [a.deviceId]: { at: null, read: 0 }, [b.deviceId]: { at: null, read: 0 } });
    await store.recordSeen(motebit.motebitId, [
      { deviceId: a.deviceId, at: 1_000, readSeq: 5 },
      { deviceId: b.deviceId, at: 500, readSeq: null },
    ]);
    expect(await seen(motebit)).toEqual({ [a.deviceId]: { at: 1_000, read: 5 }, [b.deviceId]: { at: 500, read: 0 } });
    // An older sighting (another relay instance writing late) moves nothing back.
    await store.recordSeen(motebit.motebitId, [{ deviceId: a.deviceId, at: 900, readSeq: 3 }]);
    expect(await seen(motebit)).toEqual({ [a.deviceId]: { at: 1_000, read: 5 }, [b.deviceId]: { at: 500, read: 0 } });
    // A sighting that says nothing of the read position keeps it.
    await store.recordSeen(motebit.motebitId, [{ deviceId: a.deviceId, at: 2_000, readSeq: null }]);
    expect((await store.device(motebit.motebitId, a.deviceId))).toMatchObject({ lastSeenAt: 2_000, readSeq: 5 });
    // Another motebit's device of the same id is another row; an unknown device changes nothing and does not fail.
    await store.recordSeen(other.motebitId, [{ deviceId: a.deviceId, at: 3_000, readSeq: 9 }]);
    expect(await seen(other)).toEqual({ [stranger.deviceId]: { at: null, read: 0 } });
    expect((await store.device(motebit.motebitId, a.deviceId))).toMatchObject({ lastSeenAt: 2_000, readSeq: 5 });
    await store.recordSeen(motebit.motebitId, []);
    // A revoked device keeps what was last known of it.
    await store.revokeDevice(motebit.motebitId, b.deviceId, 4_000);
    expect(await store.device(motebit.motebitId, b.deviceId)).toMatchObject({ lastSeenAt: 500, readSeq: 0, revokedAt: 4_000 });
  });
});

describe(`membership logs on ${TEST_STORE}`, () => {
  const entry = (seq: number) => ({ seq, hash: String(seq).padStart(64, '0'), text: JSON.stringify({ seq }) });
  const member = (name: string) => ({ deviceId: `dv_${name.padEnd(22, 'x')}`, key: Buffer.alloc(32, name.charCodeAt(0)), name });

  it('a genesis registers a new motebit; entries follow one by one; device rows come and go with them', async () => {
    const motebitId = new TestMotebit().motebitId;
    const heard: Notification[] = [];
    store.subscribe(motebitId, (n) => heard.push(n));
    expect(await store.membership(motebitId, -1)).toEqual([]);
    expect(await store.appendMembership(motebitId, { entries: [entry(1)], added: [], removed: [], now: 1 })).toEqual({ kind: 'conflict', head: -1 });
    expect(await store.appendMembership(motebitId, { entries: [entry(0)], added: [member('laptop')], removed: [], now: 10 })).toEqual({ kind: 'appended', head: 0 });
    expect((await store.identityKey(motebitId))?.byteLength).toBe(0); // registered, with its members' keys in the log
    expect(await store.appendMembership(motebitId, { entries: [entry(1), entry(2)], added: [member('phone')], removed: [], now: 20 })).toEqual({ kind: 'appended', head: 2 });
    expect(await store.appendMembership(motebitId, { entries: [entry(2)], added: [], removed: [], now: 21 })).toEqual({ kind: 'conflict', head: 2 });
    expect(await store.membership(motebitId, -1)).toEqual([entry(0), entry(1), entry(2)]);
    expect(await store.membership(motebitId, 1)).toEqual([entry(2)]);
    const phone = await store.device(motebitId, member('phone').deviceId);
    expect(phone).toMatchObject({ key: member('phone').key, cert: '', name: 'phone', enrolledAt: 20, revokedAt: null });
    expect(await store.appendMembership(motebitId, { entries: [entry(3)], added: [], removed: [member('phone').deviceId], now: 30 })).toEqual({ kind: 'appended', head: 3 });
    expect((await store.device(motebitId, member('phone').deviceId))?.revokedAt).toBe(30);
    expect(heard).toEqual([{ kind: 'revoked', deviceId: member('phone').deviceId }]);
    // A removed member's row stays revoked: an enrolment cannot bring it back either.
    expect((await store.enrolDevice({ motebitId, identityKey: Buffer.alloc(32), deviceId: member('phone').deviceId, deviceKey: member('phone').key, cert: 'x', name: null, now: 40 })).kind).toBe('wrong_identity');
  });

  it('an upgraded protocol-2 motebit keeps its identity key and devices when its log starts', async () => {
    const motebit = new TestMotebit();
    const device = motebit.device();
    await store.enrolDevice(enrolInput(motebit, device));
    expect((await store.appendMembership(motebit.motebitId, { entries: [entry(0)], added: [member('new')], removed: [], now: 5 })).kind).toBe('appended');
    expect((await store.identityKey(motebit.motebitId))?.equals(motebit.identity.publicKey)).toBe(true);
    expect((await store.devices(motebit.motebitId)).map((d) => d.deviceId).sort()).toEqual([device.deviceId, member('new').deviceId].sort());
  });

  it('of concurrent appends at the same position, exactly one wins', async () => {
    const motebitId = new TestMotebit().motebitId;
    const other = await openTestStore(join(dir.dir, 'store.db'));
    try {
      await store.appendMembership(motebitId, { entries: [entry(0)], added: [], removed: [], now: 1 });
      const outcomes = await Promise.all([store, other, store, other].map((s, i) => s.appendMembership(motebitId, { entries: [{ ...entry(1), text: `{"by":${i}}` }], added: [], removed: [], now: 2 })));
      expect(outcomes.filter((o) => o.kind === 'appended')).toHaveLength(1);
      expect(outcomes.filter((o) => o.kind === 'conflict')).toHaveLength(3);
      expect(await other.membership(motebitId, -1)).toHaveLength(2);
    } finally {
      await other.close();
    }
  });
});

// Snapshots, acknowledgements and compaction (docs/protocol.md §7): appended with their imports (hoisted like any import).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { compactionFloors } from '../../relay/compaction.ts';
import { newSnapshotId } from '../../shared/ids.ts';

describe(`snapshots, acknowledgements and compaction on ${TEST_STORE}`, () => {
  // The store checks lengths against chunk_bytes whatever it is (the 64 KiB minimum is the wire's), so small chunks keep these quick.
  const upload = (bytes: number, chunkBytes: number) => {
    const blob = randomBytes(bytes);
    const chunks = Array.from({ length: Math.ceil(bytes / chunkBytes) }, (_, i) => blob.subarray(i * chunkBytes, (i + 1) * chunkBytes));
    return { blob, chunks, sha256: createHash('sha256').update(blob).digest('hex'), size: bytes, chunkBytes };
  };
  const beginInput = (device: { deviceId: string }, u: ReturnType<typeof upload>, covers: Record<string, number>, snapshotId = newSnapshotId(), now = 1_000) => ({
    snapshotId,
    deviceId: device.deviceId,
    size: u.size,
    sha256: u.sha256,
    chunkBytes: u.chunkBytes,
    covers,
    now,
  });
  const putAll = async (motebitId: string, device: { deviceId: string }, snapshotId: string, u: ReturnType<typeof upload>) => {
    for (const [i, chunk] of u.chunks.entries()) expect((await store.putSnapshotChunk(motebitId, snapshotId, device.deviceId, i, chunk, 2_000)).kind).toBe('stored');
  };
  const readBack = async (motebitId: string, snapshotId: string, chunks: number) => Buffer.concat(await Promise.all(Array.from({ length: chunks }, async (_, i) => (await store.snapshotChunk(motebitId, snapshotId, i))!)));

  it('takes an upload in chunks, resumes it, commits it when whole, and serves it as the latest', async () => {
    const motebit = new TestMotebit();
    const [a, b] = [motebit.device('a'), motebit.device('b')];
    await store.enrolDevice(enrolInput(motebit, a));
    await store.enrolDevice(enrolInput(motebit, b));
    const u = upload(10, 4); // chunks of 4, 4 and 2 bytes
    const input = beginInput(a, u, { [a.deviceId]: 3 });
    expect(await store.beginSnapshot(motebit.motebitId, input)).toEqual({ kind: 'begun', received: [] });
    expect(await store.putSnapshotChunk(motebit.motebitId, input.snapshotId, a.deviceId, 2, u.chunks[2]!, 1_500)).toEqual({ kind: 'stored', received: 1 });
    expect(await store.putSnapshotChunk(motebit.motebitId, input.snapshotId, a.deviceId, 0, u.chunks[0]!, 1_500)).toEqual({ kind: 'stored', received: 2 });
    // The same begin again resumes: the chunks held, sorted.
    expect(await store.beginSnapshot(motebit.motebitId, { ...input, now: 1_600 })).toEqual({ kind: 'resumed', received: [0, 2] });
    expect(await store.commitSnapshot(motebit.motebitId, input.snapshotId, a.deviceId, 2, 1_700)).toEqual({ kind: 'incomplete', missing: 1 });
    expect(await store.latestSnapshot(motebit.motebitId)).toBeNull();
    expect(await store.snapshotChunk(motebit.motebitId, input.snapshotId, 0)).toBeNull(); // an upload is not served
    // Every way a chunk can be wrong, and nothing of it is stored.
    expect(await store.putSnapshotChunk(motebit.motebitId, input.snapshotId, a.deviceId, 1, Buffer.alloc(3), 1_800)).toEqual({ kind: 'wrong_length', expected: 4 });
    expect(await store.putSnapshotChunk(motebit.motebitId, input.snapshotId, a.deviceId, 2, Buffer.alloc(4), 1_800)).toEqual({ kind: 'wrong_length', expected: 2 });
    expect(await store.putSnapshotChunk(motebit.motebitId, input.snapshotId, a.deviceId, 3, Buffer.alloc(4), 1_800)).toEqual({ kind: 'out_of_range', chunks: 3 });
    expect(await store.putSnapshotChunk(motebit.motebitId, input.snapshotId, b.deviceId, 1, u.chunks[1]!, 1_800)).toEqual({ kind: 'other_device' });
    expect(await store.putSnapshotChunk(motebit.motebitId, newSnapshotId(), a.deviceId, 1, u.chunks[1]!, 1_800)).toEqual({ kind: 'not_found' });
    expect(await store.putSnapshotChunk(motebit.motebitId, input.snapshotId, a.deviceId, 0, Buffer.alloc(4, 7), 1_800)).toEqual({ kind: 'conflict' });
    // The same bytes again are fine.
    expect(await store.putSnapshotChunk(motebit.motebitId, input.snapshotId, a.deviceId, 0, u.chunks[0]!, 1_800)).toEqual({ kind: 'stored', received: 2 });
    expect(await store.putSnapshotChunk(motebit.motebitId, input.snapshotId, a.deviceId, 1, u.chunks[1]!, 1_900)).toEqual({ kind: 'stored', received: 3 });
    expect(await store.commitSnapshot(motebit.motebitId, input.snapshotId, b.deviceId, 2, 2_000)).toEqual({ kind: 'other_device' });
    const committed = await store.commitSnapshot(motebit.motebitId, input.snapshotId, a.deviceId, 2, 2_000);
    const expected = { snapshotId: input.snapshotId, deviceId: a.deviceId, size: 10, sha256: u.sha256, chunkBytes: 4, chunks: 3, covers: { [a.deviceId]: 3 }, completedAt: 2_000, touchedAt: 2_000 };
    expect(committed).toEqual({ kind: 'committed', snapshot: expected, pruned: 0 });
    expect(await store.latestSnapshot(motebit.motebitId)).toEqual(expected);
    expect(await readBack(motebit.motebitId, input.snapshotId, 3)).toEqual(u.blob);
    expect(await store.snapshotChunk(motebit.motebitId, input.snapshotId, 3)).toBeNull();
    // Complete: a begin says so, a commit again answers it.
    expect(await store.beginSnapshot(motebit.motebitId, { ...input, now: 3_000 })).toEqual({ kind: 'complete', chunks: 3 });
    expect(await store.commitSnapshot(motebit.motebitId, input.snapshotId, a.deviceId, 2, 3_000)).toEqual({ kind: 'committed', snapshot: expected, pruned: 0 });
    // Another motebit sees none of it.
    const other = new TestMotebit();
    expect(await store.latestSnapshot(other.motebitId)).toBeNull();
    expect(await store.snapshotChunk(other.motebitId, input.snapshotId, 0)).toBeNull();
  });

  it('refuses a begin with other fields or by another device, replaces a device\'s unfinished upload, and forgets stale ones', async () => {
    const motebit = new TestMotebit();
    const [a, b] = [motebit.device('a'), motebit.device('b')];
    await store.enrolDevice(enrolInput(motebit, a));
    await store.enrolDevice(enrolInput(motebit, b));
    const u = upload(8, 4);
    const first = beginInput(a, u, { [a.deviceId]: 1 });
    await store.beginSnapshot(motebit.motebitId, first);
    await store.putSnapshotChunk(motebit.motebitId, first.snapshotId, a.deviceId, 0, u.chunks[0]!, 1_000);
    expect(await store.beginSnapshot(motebit.motebitId, { ...first, deviceId: b.deviceId })).toEqual({ kind: 'conflict', reason: 'other_device' });
    expect(await store.beginSnapshot(motebit.motebitId, { ...first, covers: { [a.deviceId]: 2 } })).toEqual({ kind: 'conflict', reason: 'other_fields' });
    expect(await store.beginSnapshot(motebit.motebitId, { ...first, sha256: '0'.repeat(64) })).toEqual({ kind: 'conflict', reason: 'other_fields' });
    expect(await store.beginSnapshot(motebit.motebitId, { ...first, chunkBytes: 8 })).toEqual({ kind: 'conflict', reason: 'other_fields' });
    // b's own upload does not touch a's.
    const theirs = beginInput(b, u, { [b.deviceId]: 1 }, newSnapshotId(), 5_000);
    expect((await store.beginSnapshot(motebit.motebitId, theirs)).kind).toBe('begun');
    expect(await store.beginSnapshot(motebit.motebitId, first)).toEqual({ kind: 'resumed', received: [0] });
    // A new upload by a replaces a's unfinished one: its chunks are gone.
    const second = beginInput(a, u, { [a.deviceId]: 2 }, newSnapshotId(), 1_000);
    expect((await store.beginSnapshot(motebit.motebitId, second)).kind).toBe('begun');
    expect(await store.putSnapshotChunk(motebit.motebitId, first.snapshotId, a.deviceId, 1, u.chunks[1]!, 1_100)).toEqual({ kind: 'not_found' });
    expect(await store.beginSnapshot(motebit.motebitId, first)).toEqual({ kind: 'begun', received: [] });
    expect(await store.beginSnapshot(motebit.motebitId, second)).toEqual({ kind: 'begun', received: [] });
    // Uploads not touched since before the cutoff are forgotten; a complete snapshot never is.
    const done = beginInput(b, u, { [b.deviceId]: 1 }, newSnapshotId(), 100);
    await store.beginSnapshot(motebit.motebitId, done);
    await putAll(motebit.motebitId, b, done.snapshotId, u);
    expect((await store.commitSnapshot(motebit.motebitId, done.snapshotId, b.deviceId, 2, 200)).kind).toBe('committed');
    await store.pruneSnapshotUploads(1_500); // second was touched at 1_000; theirs was replaced by done
    expect(await store.putSnapshotChunk(motebit.motebitId, second.snapshotId, a.deviceId, 0, u.chunks[0]!, 1_600)).toEqual({ kind: 'not_found' });
    expect((await store.latestSnapshot(motebit.motebitId))?.snapshotId).toBe(done.snapshotId);
    expect(await readBack(motebit.motebitId, done.snapshotId, 2)).toEqual(u.blob);
  });

  it('keeps the two newest complete snapshots, and discards an upload whose chunks do not hash to its sha256', async () => {
    const motebit = new TestMotebit();
    const a = motebit.device('a');
    await store.enrolDevice(enrolInput(motebit, a));
    const made: { id: string; u: ReturnType<typeof upload> }[] = [];
    for (let i = 1; i <= 3; i++) {
      const u = upload(6, 4);
      const input = beginInput(a, u, { [a.deviceId]: i }, newSnapshotId(), i * 1_000);
      await store.beginSnapshot(motebit.motebitId, input);
      await putAll(motebit.motebitId, a, input.snapshotId, u);
      const committed = await store.commitSnapshot(motebit.motebitId, input.snapshotId, a.deviceId, 2, i * 1_000);
      expect(committed).toMatchObject({ kind: 'committed', pruned: i === 3 ? 1 : 0 });
      made.push({ id: input.snapshotId, u });
    }
    expect((await store.latestSnapshot(motebit.motebitId))?.snapshotId).toBe(made[2]!.id);
    expect(await store.snapshotChunk(motebit.motebitId, made[0]!.id, 0)).toBeNull(); // the oldest is gone, chunks and all
    expect(await readBack(motebit.motebitId, made[1]!.id, 2)).toEqual(made[1]!.u.blob);
    expect(await readBack(motebit.motebitId, made[2]!.id, 2)).toEqual(made[2]!.u.blob);

    const u = upload(6, 4);
    const bad = beginInput(a, { ...u, sha256: createHash('sha256').update('something else').digest('hex') }, { [a.deviceId]: 9 });
    await store.beginSnapshot(motebit.motebitId, bad);
    await putAll(motebit.motebitId, a, bad.snapshotId, u);
    expect(await store.commitSnapshot(motebit.motebitId, bad.snapshotId, a.deviceId, 2, 9_000)).toEqual({ kind: 'mismatch' });
    expect(await store.commitSnapshot(motebit.motebitId, bad.snapshotId, a.deviceId, 2, 9_000)).toEqual({ kind: 'not_found' });
    expect(await store.beginSnapshot(motebit.motebitId, bad)).toEqual({ kind: 'begun', received: [] });
    expect((await store.latestSnapshot(motebit.motebitId))?.snapshotId).toBe(made[2]!.id);
  });

  it("keeps each device's newest acknowledgement: a lower or equal time changes nothing", async () => {
    const motebit = new TestMotebit();
    const [a, b] = [motebit.device('a'), motebit.device('b')];
    const ack = (deviceId: string, at: number, seq: number) => ({ deviceId, covers: { [a.deviceId]: seq }, at, sig: 's'.repeat(86) });
    expect(await store.putAck(motebit.motebitId, ack(a.deviceId, 10, 5))).toBe(true);
    expect(await store.putAck(motebit.motebitId, ack(b.deviceId, 5, 1))).toBe(true);
    expect(await store.putAck(motebit.motebitId, ack(a.deviceId, 10, 7))).toBe(false);
    expect(await store.putAck(motebit.motebitId, ack(a.deviceId, 9, 8))).toBe(false);
    expect(await store.putAck(motebit.motebitId, ack(a.deviceId, 11, 6))).toBe(true);
    const byDevice = Object.fromEntries((await store.acks(motebit.motebitId)).map((x) => [x.deviceId, x]));
    expect(byDevice).toEqual({ [a.deviceId]: ack(a.deviceId, 11, 6), [b.deviceId]: ack(b.deviceId, 5, 1) });
    expect(await store.acks(new TestMotebit().motebitId)).toEqual([]);
  });

  it('compacts exactly the covered events once every live device acknowledged, as stubs that keep their ids and seqs', async () => {
    const motebit = new TestMotebit();
    const [a, b, c] = [motebit.device('a'), motebit.device('b'), motebit.device('c')];
    for (const device of [a, b, c]) await store.enrolDevice(enrolInput(motebit, device));
    const other = new TestMotebit();
    const stranger = other.device();
    await store.enrolDevice(enrolInput(other, stranger));
    // seq: a1 b1 a2 b2 a3 c1 a4 b3
    const [a1, a2, a3, a4] = a.events(4, 300);
    const [b1, b2, b3] = b.events(3, 600);
    const [c1] = c.events(1, 900);
    const log = [a1!, b1!, a2!, b2!, a3!, c1!, a4!, b3!];
    await store.appendBatch(motebit.motebitId, log);
    const theirs = stranger.events(3);
    await store.appendBatch(other.motebitId, theirs);
    const usageBefore = await store.usage(motebit.motebitId);
    const otherBefore = await store.readAfter(other.motebitId, 0, 100, 1 << 20);

    const u = upload(8, 4);
    const covers = { [a.deviceId]: 3, [b.deviceId]: 2 };
    const input = beginInput(a, u, covers);
    await store.beginSnapshot(motebit.motebitId, input);
    await putAll(motebit.motebitId, a, input.snapshotId, u);
    await store.commitSnapshot(motebit.motebitId, input.snapshotId, a.deviceId, 2, 3_000);

    const ack = (device: { deviceId: string }, at: number, over: Record<string, number>) => store.putAck(motebit.motebitId, { deviceId: device.deviceId, covers: over, at, sig: 's'.repeat(86) });
    // c has not acknowledged: nothing may go. Then c acknowledges too little of b.
    await ack(a, 1, { [a.deviceId]: 4, [b.deviceId]: 3, [c.deviceId]: 1 });
    await ack(b, 1, { [a.deviceId]: 3, [b.deviceId]: 3 });
    expect(await store.compact(motebit.motebitId, compactionFloors)).toBeNull();
    await ack(c, 1, { [a.deviceId]: 4, [b.deviceId]: 1, [c.deviceId]: 1 });
    expect(await store.compact(motebit.motebitId, compactionFloors)).toBeNull();
    expect(await store.usage(motebit.motebitId)).toEqual(usageBefore);

    await ack(c, 2, { [a.deviceId]: 3, [b.deviceId]: 2, [c.deviceId]: 1 });
    const dropped = [a1!, a2!, a3!, b1!, b2!];
    const result = await store.compact(motebit.motebitId, compactionFloors);
    expect(result).toEqual({ events: 5, bytes: dropped.reduce((sum, e) => sum + e.body.length, 0), floors: new Map([[a.deviceId, 3], [b.deviceId, 2]]) });
    expect(await store.usage(motebit.motebitId)).toEqual({ events: 3, bytes: c1!.body.length + a4!.body.length + b3!.body.length, devices: 3 });
    // Once done, nothing more to do.
    expect(await store.compact(motebit.motebitId, compactionFloors)).toBeNull();

    // Pulls skip the stubs; a page is never cut short by them, and the cursor goes past stubs at the end.
    const page = await store.readAfter(motebit.motebitId, 0, 100, 1 << 20);
    expect(page.events.map((e) => [e.seq, e.event_id, e.body])).toEqual([[6, c1!.event_id, c1!.body], [7, a4!.event_id, a4!.body], [8, b3!.event_id, b3!.body]]);
    expect([page.more, page.next, page.head]).toEqual([false, 8, 8]);
    const first = await store.readAfter(motebit.motebitId, 0, 1, 1 << 20);
    expect([first.events.map((e) => e.seq), first.more, first.next]).toEqual([[6], true, 6]);
    expect((await store.readAfter(motebit.motebitId, 3, 100, 1 << 20)).events.map((e) => e.seq)).toEqual([6, 7, 8]);
    // The frontier: heads as before, each writer's floor, and a compacted seq still names its event.
    const frontier = await store.frontier(motebit.motebitId, 2);
    expect(frontier.devices).toEqual([{ deviceId: a.deviceId, seq: 4 }, { deviceId: b.deviceId, seq: 3 }, { deviceId: c.deviceId, seq: 1 }].sort((x, y) => (x.deviceId < y.deviceId ? -1 : 1)));
    expect(frontier.floors).toEqual([{ deviceId: a.deviceId, seq: 3 }, { deviceId: b.deviceId, seq: 2 }].sort((x, y) => (x.deviceId < y.deviceId ? -1 : 1)));
    expect(frontier.at).toEqual({ seq: 2, eventId: b1!.event_id });
    // A retried push of a compacted event is a duplicate with its seq; its id stays taken; its writer's seqs stay used.
    const fork = { ...a1!, event_id: randomUUID(), device_seq: 2 };
    const retry = await store.appendBatch(motebit.motebitId, [a1!, { ...c.events(1)[0]!, event_id: b2!.event_id }, fork]);
    expect(retry.results).toEqual([
      { event_id: a1!.event_id, status: 'duplicate', seq: 1 },
      { event_id: b2!.event_id, status: 'rejected', reason: 'event_id_taken' },
      { event_id: fork.event_id, status: 'rejected', reason: 'device_seq_conflict' },
    ]);
    const [a5] = a.events(1);
    expect((await store.appendBatch(motebit.motebitId, [a5!])).results).toEqual([{ event_id: a5!.event_id, status: 'stored', seq: 9 }]);
    // Another motebit is untouched.
    expect(await store.readAfter(other.motebitId, 0, 100, 1 << 20)).toEqual(otherBefore);
    expect((await store.frontier(other.motebitId)).floors).toEqual([]);
    expect((await store.usage(other.motebitId)).events).toBe(3);
  });

  it('a device without an acknowledgement blocks compaction until it is revoked; the recovery key is no device', async () => {
    const motebit = new TestMotebit();
    const [a, b] = [motebit.device('a'), motebit.device('b')];
    for (const device of [a, b]) await store.enrolDevice(enrolInput(motebit, device));
    const events = a.events(3);
    await store.appendBatch(motebit.motebitId, events);
    const u = upload(4, 4);
    const input = beginInput(a, u, { [a.deviceId]: 3 });
    await store.beginSnapshot(motebit.motebitId, input);
    await putAll(motebit.motebitId, a, input.snapshotId, u);
    await store.commitSnapshot(motebit.motebitId, input.snapshotId, a.deviceId, 2, 1);
    await store.putAck(motebit.motebitId, { deviceId: a.deviceId, covers: { [a.deviceId]: 3 }, at: 1, sig: 's'.repeat(86) });
    expect(await store.compact(motebit.motebitId, compactionFloors)).toBeNull();
    // A recovery key's row (a membership log's member that signs in, not a device) does not block it.
    const recovery = { deviceId: `rk_${'r'.repeat(22)}`, key: Buffer.alloc(32, 1), name: null };
    await store.appendMembership(motebit.motebitId, { entries: [{ seq: 0, hash: '0'.repeat(64), text: '{}' }], added: [recovery], removed: [], now: 2 });
    await store.revokeDevice(motebit.motebitId, b.deviceId, 3);
    expect(await store.compact(motebit.motebitId, compactionFloors)).toMatchObject({ events: 3 });
    const last = await store.readAfter(motebit.motebitId, 0, 100, 1 << 20);
    expect([last.events, last.more, last.next, last.head]).toEqual([[], false, 3, 3]);
    expect((await store.readAfter(motebit.motebitId, 7, 100, 1 << 20)).next).toBe(7);
  });
});
