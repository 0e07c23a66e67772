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
