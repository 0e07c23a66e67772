// Snapshot uploads and downloads resume (issue 12): an upload cut off after some chunks is finished by the
// next attempt (a new SnapshotSync, as after a restart) sending only the chunks the relay lacks, and a
// download cut off the same way fetches only the chunks it does not hold yet. Real relay on 127.0.0.1, real
// SQLite stores; the only thing altered is a relay call that fails once, as a dropped connection would.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Device } from '../../main/app/device.ts';
import { EventStore } from '../../main/store/event-store.ts';
import { PULL_CURSOR } from '../../main/store/relay-ledger.ts';
import { SnapshotSync, type SnapshotRelay } from '../../main/sync/snapshot-sync.ts';
import { TransportError } from '../../main/sync/transport.ts';
import { randomSeed, signingKeyFromSeed } from '../../shared/crypto.ts';
import { deviceIdFromDeviceKey, newSnapshotId } from '../../shared/ids.ts';
import { encodeSnapshotBlob } from '../../shared/snapshot/blob.ts';
import { SnapshotError } from '../../shared/snapshot/content.ts';
import { identitySnapshotSigner } from '../../shared/snapshot/signer.ts';
import { asyncRefusal } from '../support/refusal.ts';
import { Lab, syncAll } from '../support/devices.ts';
import type { SyncProgress } from '../../shared/portable/status.ts';

let lab: Lab;
beforeEach(() => void (lab = new Lab()));
afterEach(() => lab.close());

const CHUNK = 65_536;

/** The device's relay calls, counted, with one call of `failing` refused once it has been made `after` times. */
function flaky(relay: SnapshotRelay, failing: 'putSnapshotChunk' | 'snapshotChunk' | null, after: number) {
  const calls = { putSnapshotChunk: 0, snapshotChunk: 0 };
  const wrapped: SnapshotRelay = {
    beginSnapshot: (begin) => relay.beginSnapshot(begin),
    commitSnapshot: (id) => relay.commitSnapshot(id),
    latestSnapshot: () => relay.latestSnapshot(),
    postAck: (covers, at) => relay.postAck(covers, at),
    putSnapshotChunk: async (id, index, data) => {
      if (failing === 'putSnapshotChunk' && calls.putSnapshotChunk === after) throw new TransportError('network', 'the connection was dropped');
      calls.putSnapshotChunk++;
      return relay.putSnapshotChunk(id, index, data);
    },
    snapshotChunk: async (id, index) => {
      if (failing === 'snapshotChunk' && calls.snapshotChunk === after) throw new TransportError('network', 'the connection was dropped');
      calls.snapshotChunk++;
      return relay.snapshotChunk(id, index);
    },
  };
  return { relay: wrapped, calls };
}

/** A device that synced 400 incompressible values, so its snapshot spans several chunks. */
async function syncedWithChunks(): Promise<Device> {
  const relay = await lab.relay();
  const a = await lab.create(relay.url, { encryption: false, transport: 'http' });
  a.write(Array.from({ length: 400 }, (_, i) => ({ entity: `memory/${i}`, op: 'set' as const, payload: randomBytes(600).toString('hex') })));
  expect((await a.syncNow()).ok).toBe(true);
  return a;
}

/** A new device's empty store for the same motebit as `device` (its own device key), in the lab's folder. */
function newDeviceStore(device: Device, file: string): EventStore {
  const identity = device.identity;
  if (identity.kind !== 'master-token') throw new Error('this test uses a master-token motebit');
  return EventStore.open(join(lab.dir, file), { motebitId: identity.motebitId, deviceId: deviceIdFromDeviceKey(signingKeyFromSeed(randomSeed()).publicKey), identityPublicKey: identity.identityKey.publicKey });
}

function syncer(device: Device, store: EventStore, relay: SnapshotRelay, policy: { every: number; everyMb: number } = { every: 0, everyMb: 0 }, folders = true): SnapshotSync {
  const identity = device.identity;
  if (identity.kind !== 'master-token') throw new Error('this test uses a master-token motebit');
  return new SnapshotSync({
    store,
    relay,
    credentials: identity.credentials,
    keys: () => null,
    signer: () => identitySnapshotSigner(identity.motebitId, identity.identityKey.publicKey),
    writers: async () => [],
    ...(folders ? { uploadDir: join(device.home, 'upload'), downloadDir: join(lab.dir, 'download') } : {}),
    chunkBytes: CHUNK,
    ...policy,
  });
}

describe('snapshots resume', () => {
  it('an interrupted upload sends only what the relay lacks; an interrupted download fetches only what it lacks', async () => {
    const a = await syncedWithChunks();

    const cut = flaky(a.relay, 'putSnapshotChunk', 2);
    await expect(syncer(a, a.store, cut.relay).make()).rejects.toThrow(/dropped/);
    expect((await a.relay.latestSnapshot()).snapshot).toBeNull();
    const resumed = flaky(a.relay, null, 0);
    const seen: SyncProgress[] = [];
    const made = await syncer(a, a.store, resumed.relay).make((progress) => seen.push(progress));
    const chunks = Math.ceil(made.bytes / CHUNK);
    expect(chunks).toBeGreaterThanOrEqual(4);
    expect(resumed.calls.putSnapshotChunk).toBe(chunks - 2); // the two stored before the cut are not sent again
    // Progress starts at what the relay already holds and counts each chunk sent, to the total.
    expect(seen).toEqual([2 * CHUNK, ...Array.from({ length: chunks - 2 }, (_, i) => Math.min(made.bytes, (3 + i) * CHUNK))].map((done) => ({ phase: 'snapshot_upload', done, total: made.bytes })));
    expect((await a.relay.latestSnapshot()).snapshot?.snapshot_id).toBe(made.snapshotId);

    // A new device's store, downloading through a relay connection that drops after two chunks.
    const store = newDeviceStore(a, 'new.db');
    const stores = [store];
    try {
      const dropped = flaky(a.relay, 'snapshotChunk', 2);
      await expect(syncer(a, store, dropped.relay).join()).rejects.toThrow(/dropped/);
      expect(store.snapshots.isEmpty()).toBe(true);
      // The two kept chunks are damaged: one cut short is fetched again; the other's bytes changed, which
      // fails the whole download (its hash), and then every kept chunk goes, so the next try fetches all.
      const kept = join(lab.dir, 'download', made.snapshotId);
      writeFileSync(join(kept, '1'), readFileSync(join(kept, '1')).subarray(1));
      const flipped = readFileSync(join(kept, '0'));
      flipped.writeUInt8(flipped.readUInt8(0) ^ 1, 0);
      writeFileSync(join(kept, '0'), flipped);
      const damaged = flaky(a.relay, null, 0);
      await expect(syncer(a, store, damaged.relay).join()).rejects.toMatchObject({ fault: 'unreadable', message: 'the snapshot the relay served is not the one that was uploaded (its bytes differ)' });
      expect(damaged.calls.snapshotChunk).toBe(chunks - 1); // all but the whole kept chunk 0
      expect(existsSync(kept)).toBe(false);
      expect(store.snapshots.isEmpty()).toBe(true);
      const again = flaky(a.relay, null, 0);
      const joined = await syncer(a, store, again.relay).join();
      expect(joined?.snapshotId).toBe(made.snapshotId);
      expect(again.calls.snapshotChunk).toBe(chunks);
      expect(store.stateDigest()).toBe(a.store.stateDigest());

      // Another new device, cut off the same way, with its two kept chunks whole: it fetches only the rest.
      const second = newDeviceStore(a, 'second.db');
      stores.push(second);
      await expect(syncer(a, second, flaky(a.relay, 'snapshotChunk', 2).relay).join()).rejects.toThrow(/dropped/);
      const resumed = flaky(a.relay, null, 0);
      expect((await syncer(a, second, resumed.relay).join())?.snapshotId).toBe(made.snapshotId);
      expect(resumed.calls.snapshotChunk).toBe(chunks - 2);
      expect(second.stateDigest()).toBe(a.store.stateDigest());
    } finally {
      for (const s of stores) s.close();
    }
  });

  it('a relay that serves a part of the snapshot cut short is refused in words, and nothing is kept', async () => {
    const a = await syncedWithChunks();
    const made = await syncer(a, a.store, a.relay).make();
    const store = newDeviceStore(a, 'short.db');
    try {
      const cutShort: SnapshotRelay = { ...flaky(a.relay, null, 0).relay, snapshotChunk: async (id, index) => (await a.relay.snapshotChunk(id, index)).subarray(index === 1 ? 10 : 0) };
      await expect(syncer(a, store, cutShort).join()).rejects.toMatchObject({ fault: 'unreadable', message: `the relay served part 2 of the snapshot with ${CHUNK - 10} bytes instead of ${CHUNK}` });
      expect(store.snapshots.isEmpty()).toBe(true);
      expect(existsSync(join(lab.dir, 'download', made.snapshotId, '1'))).toBe(false);
    } finally {
      store.close();
    }
  });

  it('a kept upload whose file was damaged is dropped: a new snapshot is made and sent whole', async () => {
    const a = await syncedWithChunks();
    await expect(syncer(a, a.store, flaky(a.relay, 'putSnapshotChunk', 2).relay).make()).rejects.toThrow(/dropped/);
    const kept = join(a.home, 'upload');
    const cutId = (JSON.parse(readFileSync(join(kept, 'upload.json'), 'utf8')) as { snapshotId: string }).snapshotId;
    const blob = readFileSync(join(kept, 'blob'));
    blob.writeUInt8(blob.readUInt8(blob.byteLength - 1) ^ 1, blob.byteLength - 1); // in a chunk not yet sent
    writeFileSync(join(kept, 'blob'), blob);
    const fresh = flaky(a.relay, null, 0);
    const made = await syncer(a, a.store, fresh.relay).make();
    expect(made.snapshotId).not.toBe(cutId);
    expect(fresh.calls.putSnapshotChunk).toBe(Math.ceil(made.bytes / CHUNK)); // nothing of the damaged one was sent
    expect((await a.relay.latestSnapshot()).snapshot?.snapshot_id).toBe(made.snapshotId);
    expect(existsSync(kept)).toBe(false);
  });

  it('a kept upload the relay no longer has (another upload of this device replaced it as it resumed) is dropped: a new snapshot is made and sent whole', async () => {
    const a = await syncedWithChunks();
    await expect(syncer(a, a.store, flaky(a.relay, 'putSnapshotChunk', 2).relay).make()).rejects.toThrow(/dropped/);
    const kept = join(a.home, 'upload');
    const cut = JSON.parse(readFileSync(join(kept, 'upload.json'), 'utf8')) as { snapshotId: string; covers: Record<string, number> };
    // Between the resumed begin and its first chunk, the same device begins another upload (say, the CLI
    // beside the app): the relay keeps one unfinished upload per device, so it forgets the kept one.
    const puts = new Map<string, number>();
    let raced = false;
    const racing: SnapshotRelay = {
      beginSnapshot: (begin) => a.relay.beginSnapshot(begin),
      commitSnapshot: (id) => a.relay.commitSnapshot(id),
      latestSnapshot: () => a.relay.latestSnapshot(),
      postAck: (covers, at) => a.relay.postAck(covers, at),
      snapshotChunk: (id, index) => a.relay.snapshotChunk(id, index),
      putSnapshotChunk: async (id, index, data) => {
        if (!raced) {
          raced = true;
          await a.relay.beginSnapshot({ snapshot_id: newSnapshotId(), size: 100, sha256: '0'.repeat(64), chunk_bytes: CHUNK, covers: cut.covers });
        }
        puts.set(id, (puts.get(id) ?? 0) + 1);
        return a.relay.putSnapshotChunk(id, index, data);
      },
    };
    const made = await syncer(a, a.store, racing).make();
    expect(made.snapshotId).not.toBe(cut.snapshotId);
    expect(puts.get(cut.snapshotId)).toBe(1); // refused: the relay no longer has that upload
    expect(puts.get(made.snapshotId)).toBe(Math.ceil(made.bytes / CHUNK));
    expect((await a.relay.latestSnapshot()).snapshot?.snapshot_id).toBe(made.snapshotId);
    expect(existsSync(kept)).toBe(false);
  });

  it('a kept upload whose resumption fails on the network is kept for the next try, not replaced', async () => {
    const a = await syncedWithChunks();
    await expect(syncer(a, a.store, flaky(a.relay, 'putSnapshotChunk', 2).relay).make()).rejects.toThrow(/dropped/);
    const kept = join(a.home, 'upload');
    const keptId = (): string => (JSON.parse(readFileSync(join(kept, 'upload.json'), 'utf8')) as { snapshotId: string }).snapshotId;
    const cutId = keptId();
    await expect(syncer(a, a.store, flaky(a.relay, 'putSnapshotChunk', 0).relay).make()).rejects.toThrow(/dropped/);
    expect(keptId()).toBe(cutId);
    const resumed = flaky(a.relay, null, 0);
    const made = await syncer(a, a.store, resumed.relay).make();
    expect(made.snapshotId).toBe(cutId);
    expect(resumed.calls.putSnapshotChunk).toBe(Math.ceil(made.bytes / CHUNK) - 2);
    expect(existsSync(kept)).toBe(false);
  });

  it('acknowledges what this device has applied once per change, and says when it did', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { encryption: false, transport: 'http' });
    const sync = syncer(a, a.store, a.relay);
    expect(await sync.acknowledge()).toBe(false); // nothing applied yet: nothing to say
    a.put('memory/1', 1);
    expect(await sync.acknowledge()).toBe(true);
    expect(await sync.acknowledge()).toBe(false); // nothing changed since
    a.put('memory/2', 2);
    expect(await sync.acknowledge()).toBe(true);
    const mine = (await a.relay.latestSnapshot()).acks.filter((ack) => ack.device_id === a.identity.deviceId);
    expect(mine.map((ack) => ack.covers)).toEqual([{ [a.identity.deviceId]: 2 }]);
  });

  it('what it keeps of an upload or a download is readable by this user only (0700 folders, 0600 files)', async () => {
    const a = await syncedWithChunks();
    await expect(syncer(a, a.store, flaky(a.relay, 'putSnapshotChunk', 2).relay).make()).rejects.toThrow(/dropped/);
    const mode = (path: string): number => statSync(path).mode & 0o777;
    const kept = join(a.home, 'upload');
    expect([mode(kept), mode(join(kept, 'blob')), mode(join(kept, 'upload.json'))]).toEqual([0o700, 0o600, 0o600]);
    const made = await syncer(a, a.store, a.relay).make();
    const store = newDeviceStore(a, 'modes.db');
    try {
      await expect(syncer(a, store, flaky(a.relay, 'snapshotChunk', 2).relay).join()).rejects.toThrow(/dropped/);
      const chunks = join(lab.dir, 'download', made.snapshotId);
      expect(mode(chunks)).toBe(0o700);
      expect(readdirSync(chunks).sort().map((name) => [name, mode(join(chunks, name))])).toEqual([['0', 0o600], ['1', 0o600]]);
    } finally {
      store.close();
    }
  });

  it('works without folders to keep partial transfers in: it makes, joins and refuses a bad download all the same', async () => {
    const a = await syncedWithChunks();
    const made = await syncer(a, a.store, a.relay, undefined, false).make();
    expect((await a.relay.latestSnapshot()).snapshot?.snapshot_id).toBe(made.snapshotId);
    const bad = newDeviceStore(a, 'bad.db');
    const good = newDeviceStore(a, 'good.db');
    try {
      const flipped: SnapshotRelay = { ...flaky(a.relay, null, 0).relay, snapshotChunk: async (id, index) => {
        const chunk = Buffer.from(await a.relay.snapshotChunk(id, index));
        chunk.writeUInt8(chunk.readUInt8(0) ^ 1, 0);
        return chunk;
      } };
      await expect(syncer(a, bad, flipped, undefined, false).join()).rejects.toMatchObject({ fault: 'unreadable', message: 'the snapshot the relay served is not the one that was uploaded (its bytes differ)' });
      const seen: SyncProgress[] = [];
      expect((await syncer(a, good, a.relay, undefined, false).join((progress) => seen.push(progress)))?.snapshotId).toBe(made.snapshotId);
      expect(seen[0]).toEqual({ phase: 'snapshot_download', done: 0, total: made.bytes });
      expect(seen.at(-1)).toEqual({ phase: 'snapshot_download', done: made.bytes, total: made.bytes });
      expect(good.stateDigest()).toBe(a.store.stateDigest());
      // A device that holds events already does not start from a snapshot: join answers nothing.
      expect(await syncer(a, a.store, a.relay, undefined, false).join()).toBeNull();
    } finally {
      bad.close();
      good.close();
    }
  });

  it('a device that holds nothing has nothing to make a snapshot of, and says so', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { encryption: false, transport: 'http' });
    await expect(syncer(a, a.store, a.relay).make()).rejects.toMatchObject({ fault: 'empty', message: 'this device holds no events yet: there is nothing to make a snapshot of' });
  });

  it('a kept upload whose blob was written but not its description (cut off in between) is set aside: the next snapshot is made whole', async () => {
    const a = await syncedWithChunks();
    const kept = join(a.home, 'upload');
    mkdirSync(kept, { recursive: true, mode: 0o700 });
    writeFileSync(join(kept, 'blob'), randomBytes(100), { mode: 0o600 });
    const made = await syncer(a, a.store, a.relay).make();
    expect((await a.relay.latestSnapshot()).snapshot?.snapshot_id).toBe(made.snapshotId);
    expect(existsSync(kept)).toBe(false);
  });

  it('with snapshots off it only acknowledges; with them on, it asks the relay for its latest only when enough is new', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { encryption: false, transport: 'http' });
    a.put('memory/1', 1);
    expect((await a.syncNow()).ok).toBe(true);
    let asked = 0;
    const counting: SnapshotRelay = { ...flaky(a.relay, null, 0).relay, latestSnapshot: () => {
      asked++;
      return a.relay.latestSnapshot();
    } };
    expect(await syncer(a, a.store, counting, { every: 0, everyMb: 0 }).afterCycle()).toBeNull();
    expect(asked).toBe(0);
    const byCount = syncer(a, a.store, counting, { every: 5, everyMb: 0 });
    expect(await byCount.afterCycle()).toBeNull(); // 1 event of 5: asked once, to learn what the latest covers
    expect(asked).toBe(1);
    a.put('memory/2', 2);
    expect(await byCount.afterCycle()).toBeNull(); // 2 beyond what it knows the latest covers: not asked again
    expect(asked).toBe(1);
    for (let i = 3; i <= 5; i++) a.put(`memory/${i}`, i);
    expect(await byCount.afterCycle()).toMatchObject({ covered: 5 });
    expect(asked).toBe(2);
  });

  it('an upload cut off after its last chunk, before it was completed, sends nothing again: its progress starts whole', async () => {
    const a = await syncedWithChunks();
    let commits = 0;
    const uncommitted: SnapshotRelay = { ...flaky(a.relay, null, 0).relay, commitSnapshot: async (id) => {
      if (commits++ === 0) throw new TransportError('network', 'the connection was dropped');
      return a.relay.commitSnapshot(id);
    } };
    await expect(syncer(a, a.store, uncommitted).make()).rejects.toThrow(/dropped/);
    const resumed = flaky(uncommitted, null, 0);
    const seen: SyncProgress[] = [];
    const made = await syncer(a, a.store, resumed.relay).make((progress) => seen.push(progress));
    expect(made.bytes % CHUNK).not.toBe(0); // the last chunk is a short one
    expect(resumed.calls.putSnapshotChunk).toBe(0);
    expect(seen).toEqual([{ phase: 'snapshot_upload', done: made.bytes, total: made.bytes }]);
    expect((await a.relay.latestSnapshot()).snapshot?.snapshot_id).toBe(made.snapshotId);
  });

  it('a snapshot says where its events end in the relay log only when nothing below that is held back', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { encryption: false, transport: 'http' });
    const b = await lab.join(a, { name: 'b', transport: 'http' });
    a.put('memory/1', 1);
    await syncAll([a, b, a]);
    const joinedBy = async (file: string) => {
      const store = newDeviceStore(a, file);
      try {
        return await syncer(a, store, a.relay).join();
      } finally {
        store.close();
      }
    };
    await syncer(a, a.store, a.relay).make();
    expect((await joinedBy('clean.db'))?.relay).toEqual({ epoch: a.store.ledger.epoch(), seq: a.store.getCursor(PULL_CURSOR) });
    // One of b's events reaches a without the seal that vouches for it: a holds it back, unapplied.
    b.put('b/1', 1);
    b.put('b/2', 2);
    a.store.applyRemote(b.store.outboxBatch(2, b.identity.credentials).slice(0, 1));
    expect(a.store.heldCount()).toBe(1);
    await syncer(a, a.store, a.relay).make();
    expect((await joinedBy('held.db'))?.relay).toBeNull();
  });

  it('a snapshot is due by size as well as by count, and not before', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { encryption: false, transport: 'http' });
    const bySize = syncer(a, a.store, a.relay, { every: 0, everyMb: 1 });
    const write = (count: number) => a.write(Array.from({ length: count }, (_, i) => ({ entity: `memory/${i}`, op: 'set' as const, payload: randomBytes(1000).toString('hex') })));
    write(200); // about 0.4 MB of bodies: not due
    expect((await a.syncNow()).ok).toBe(true);
    expect(await bySize.afterCycle()).toBeNull();
    expect((await a.relay.latestSnapshot()).snapshot).toBeNull();
    write(400); // about 1.2 MB in all: due
    expect(await bySize.afterCycle()).toMatchObject({ covered: 600 });
    expect((await a.relay.latestSnapshot()).snapshot?.covers[a.identity.deviceId]).toBe(600);
    // By count alone, the same device would wait for 1,000 events.
    write(100);
    expect(await syncer(a, a.store, a.relay, { every: 1000, everyMb: 0 }).afterCycle()).toBeNull();
  });

  it('a snapshot asked for while another is being made is that one: one upload, not two', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { encryption: false, transport: 'http' });
    a.write(Array.from({ length: 100 }, (_, i) => ({ entity: `memory/${i}`, op: 'set' as const, payload: randomBytes(800).toString('hex') })));
    expect((await a.syncNow()).ok).toBe(true);
    const counted = flaky(a.relay, null, 0);
    const sync = syncer(a, a.store, counted.relay);
    const [first, second] = await Promise.all([sync.make(), sync.make()]);
    expect(second.snapshotId).toBe(first.snapshotId);
    expect(counted.calls.putSnapshotChunk).toBe(Math.ceil(first.bytes / CHUNK));
    // Once it is done, the next one is a new snapshot.
    expect((await sync.make()).snapshotId).not.toBe(first.snapshotId);
  });
});

/** Uploads `blob` to the relay as a snapshot of `device`'s motebit, as any member (or a faulty relay) could hold it. */
async function uploadRaw(device: Device, blob: Buffer, snapshotId = newSnapshotId()): Promise<string> {
  const sha256 = createHash('sha256').update(blob).digest('hex');
  await device.relay.beginSnapshot({ snapshot_id: snapshotId, size: blob.byteLength, sha256, chunk_bytes: CHUNK, covers: { [device.identity.deviceId]: 1 } });
  for (let i = 0; i * CHUNK < blob.byteLength; i++) await device.relay.putSnapshotChunk(snapshotId, i, blob.subarray(i * CHUNK, (i + 1) * CHUNK));
  await device.relay.commitSnapshot(snapshotId);
  return snapshotId;
}

describe('a snapshot a device will not join from', () => {
  it('a plain snapshot for a motebit that encrypts is refused, even sealed by one of its devices; a new device keeps nothing of it', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { encryption: true, transport: 'http' });
    a.put('memory/1', 'secret');
    expect((await a.syncNow()).ok).toBe(true);
    await syncer(a, a.store, a.relay).make(); // sealed by a, but not encrypted (keys: () => null)
    const b = await lab.join(a, { name: 'b', transport: 'http' });
    const error = await asyncRefusal(SnapshotError, () => b.snapshots.join(), 'the plain snapshot was joined');
    expect([error.fault, error.message]).toEqual(['unreadable', 'the snapshot is not encrypted, but this motebit encrypts everything: it was not made by one of its devices']);
    expect(b.store.eventCount()).toBe(0);
  });

  it('an encrypted snapshot for a motebit that does not encrypt is refused in words: this device has no key for it', async () => {
    const a = await syncedWithChunks();
    const snapshotId = newSnapshotId();
    await uploadRaw(a, encodeSnapshotBlob('{}', { motebitId: a.identity.motebitId, snapshotId }, { id: 'k1', key: randomBytes(32) }), snapshotId);
    const store = newDeviceStore(a, 'keyless.db');
    try {
      const error = await asyncRefusal(SnapshotError, () => syncer(a, store, a.relay).join(), 'the sealed snapshot was joined');
      expect([error.fault, error.message]).toEqual(['unreadable', 'the snapshot is encrypted with key k1, which this device does not have']);
    } finally {
      store.close();
    }
  });

  it('a snapshot whose text is not JSON is refused in words', async () => {
    const a = await syncedWithChunks();
    const snapshotId = newSnapshotId();
    await uploadRaw(a, encodeSnapshotBlob('{"not json', { motebitId: a.identity.motebitId, snapshotId }, null), snapshotId);
    const store = newDeviceStore(a, 'not-json.db');
    try {
      const error = await asyncRefusal(SnapshotError, () => syncer(a, store, a.relay).join(), 'the text was joined');
      expect([error.fault, error.message]).toEqual(['malformed', 'the snapshot is not JSON']);
      expect(store.eventCount()).toBe(0);
    } finally {
      store.close();
    }
  });
});

describe('making and pruning', () => {
  it('an upload whose completion the relay recorded but whose answer was lost is not sent or completed again', async () => {
    const a = await syncedWithChunks();
    const commits: string[] = [];
    const answerLost: SnapshotRelay = { ...flaky(a.relay, null, 0).relay, commitSnapshot: async (id) => {
      commits.push(id);
      await a.relay.commitSnapshot(id);
      throw new TransportError('network', 'the connection was dropped');
    } };
    await expect(syncer(a, a.store, answerLost).make()).rejects.toThrow(/dropped/);
    const again = flaky(answerLost, null, 0);
    const seen: SyncProgress[] = [];
    const made = await syncer(a, a.store, again.relay).make((progress) => seen.push(progress));
    expect(made.snapshotId).toBe(commits[0]);
    expect([again.calls.putSnapshotChunk, commits.length, seen]).toEqual([0, 1, []]);
    expect(existsSync(join(a.home, 'upload'))).toBe(false);
  });

  it('is due by size only for what this device holds beyond the relay\'s latest, from exactly the size set', async () => {
    const a = await syncedWithChunks();
    const bytes = a.store.snapshots.bytesBeyond({});
    expect(bytes).toBeGreaterThan(400 * 1200);
    const latest = (covers: Record<string, number>) => ({ snapshot: { covers } }) as unknown as Parameters<SnapshotSync['due']>[0];
    expect(syncer(a, a.store, a.relay, { every: 0, everyMb: bytes / 1_000_000 }).due(latest({}))).toBe(true);
    expect(syncer(a, a.store, a.relay, { every: 0, everyMb: (bytes + 1) / 1_000_000 }).due(latest({}))).toBe(false);
    // A latest snapshot that covers as many events as this device holds (of another writer): nothing beyond it here.
    const other = deviceIdFromDeviceKey(signingKeyFromSeed(randomSeed()).publicKey);
    expect(syncer(a, a.store, a.relay, { every: 0, everyMb: 0.001 }).due(latest({ [other]: 400 }))).toBe(false);
  });

  it('prune drops what the relay\'s snapshot covers and no device needs, and shrinks the database', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { encryption: false, transport: 'http' });
    for (let i = 0; i < 50; i++) a.put('memory/1', randomBytes(2000).toString('hex'));
    expect((await a.syncNow()).ok).toBe(true);
    const sync = syncer(a, a.store, a.relay);
    const made = await sync.make();
    const pruned = await sync.prune(made.covers);
    expect(pruned.dropped).toBe(49);
    expect(a.store.eventCount()).toBe(1);
    expect(pruned.bytesAfter).toBe(a.store.databaseBytes());
    expect(pruned.bytesBefore - pruned.bytesAfter).toBeGreaterThan(49 * 4000 * 0.9);
  });

  it('a snapshot gives no relay position when this device has refused events or is repairing a writer, or has never pulled', async () => {
    const joinedFrom = async (a: Device) => {
      await syncer(a, a.store, a.relay).make();
      const store = newDeviceStore(a, `${a.identity.motebitId}.db`);
      try {
        return (await syncer(a, store, a.relay).join())?.relay;
      } finally {
        store.close();
      }
    };
    const relay = await lab.relay();
    const synced = async () => {
      const a = await lab.create(relay.url, { encryption: false, transport: 'http' });
      a.put('memory/1', 1);
      expect((await a.syncNow()).ok).toBe(true);
      return a;
    };
    const other = deviceIdFromDeviceKey(signingKeyFromSeed(randomSeed()).publicKey);
    const refused = await synced();
    refused.store.recordRejected([{ relaySeq: 9, eventId: 'ev_' + 'A'.repeat(22), deviceId: other, deviceSeq: 1, code: 'bad_signature', message: 'its signature does not verify' }]);
    expect(await joinedFrom(refused)).toBeNull();
    const repairing = await synced();
    repairing.store.ledger.noteFailure({ deviceId: other, relaySeq: 9, deviceSeq: 1, code: 'bad_signature', message: 'its signature does not verify' }, Date.now());
    expect(await joinedFrom(repairing)).toBeNull();
    const neverPulled = await lab.create(relay.url, { encryption: false, transport: 'http' });
    neverPulled.put('memory/1', 1);
    expect(neverPulled.store.ledger.epoch()).toBeNull();
    expect(await joinedFrom(neverPulled)).toBeNull();
    expect(await joinedFrom(await synced())).toMatchObject({ seq: 1 });
  });
});
