// SQLite only: group commit. Appends and nonces that arrive together share one transaction (one fsync);
// each is still all-or-nothing on its own, and nothing is acknowledged before the commit that holds it.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../../relay/sqlite-store.ts';
import { TestMotebit, tempDir } from '../support.ts';

let dir: ReturnType<typeof tempDir>;
let store: SqliteStore;
let path: string;

beforeEach(() => {
  dir = tempDir();
  path = join(dir.dir, 'relay.db');
  store = new SqliteStore(path);
});

afterEach(async () => {
  await store.close();
  dir.cleanup();
});

describe('durability of the relay database', () => {
  it('commits with WAL and synchronous FULL: an acknowledged event survives a power cut, not only a crash', () => {
    expect(store.durability).toEqual({ journalMode: 'wal', synchronous: 2 }); // 2 = FULL
  });
});

async function enrolled(): Promise<{ motebit: TestMotebit; device: ReturnType<TestMotebit['device']> }> {
  const motebit = new TestMotebit();
  const device = motebit.device();
  await store.enrolDevice({ motebitId: motebit.motebitId, identityKey: motebit.identity.publicKey, deviceId: device.deviceId, deviceKey: device.key.publicKey, cert: device.cert, name: null, now: 1 });
  return { motebit, device };
}

describe('SqliteStore group commit', () => {
  it('commits writes that arrive together in one transaction, each acknowledged only once it is on disk', async () => {
    const tenants = await Promise.all(Array.from({ length: 50 }, () => enrolled()));
    const before = store.groupCommits;
    const [appends, nonces] = await Promise.all([
      Promise.all(tenants.map(({ motebit, device }) => store.appendBatch(motebit.motebitId, device.events(3)))),
      Promise.all(tenants.map(({ motebit, device }) => store.useNonce(motebit.motebitId, device.deviceId, 'n'.repeat(22), 2 ** 40))),
    ]);
    expect(store.groupCommits - before).toBe(1);
    expect(appends.every((a) => a.head === 3 && a.results.every((r) => r.status === 'stored'))).toBe(true);
    expect(nonces.every(Boolean)).toBe(true);
    // Another connection (as after a crash) sees every acknowledged write.
    const reader = new Database(path, { readonly: true });
    try {
      expect((reader.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n).toBe(150);
      expect((reader.prepare('SELECT count(*) AS n FROM nonces').get() as { n: number }).n).toBe(50);
    } finally {
      reader.close();
    }
  });

  it('a write that fails is rolled back alone; the rest of its group commits', async () => {
    const { motebit, device } = await enrolled();
    const stranger = new TestMotebit().device();
    const events = device.events(2);
    const outcomes = await Promise.allSettled([
      store.appendBatch(motebit.motebitId, events.slice(0, 1)),
      store.appendBatch(stranger.motebit.motebitId, stranger.events(1)), // no such motebit: throws inside the group
      store.appendBatch(motebit.motebitId, events.slice(1)),
      store.useNonce(motebit.motebitId, device.deviceId, 'm'.repeat(22), 2 ** 40),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((await store.readAfter(motebit.motebitId, 0, 10, 1 << 20)).events.map((e) => e.event_id)).toEqual(events.map((e) => e.event_id));
    expect((await store.readAfter(stranger.motebit.motebitId, 0, 10, 1 << 20)).events).toEqual([]);
  });

  it('a store closed with writes waiting commits them first', async () => {
    const { motebit, device } = await enrolled();
    const pending = store.appendBatch(motebit.motebitId, device.events(1));
    await store.close();
    expect((await pending).head).toBe(1);
    store = new SqliteStore(path);
    expect(await store.head(motebit.motebitId)).toBe(1);
  });
});
