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

  it("merges a group's news per motebit: one notification for several batches, in order, at most 256 events each, before any writer hears back", async () => {
    const { motebit, device } = await enrolled();
    const other = await enrolled();
    const heard: { motebit: string; seqs: number[] }[] = [];
    const order: string[] = [];
    for (const id of [motebit.motebitId, other.motebit.motebitId]) {
      store.subscribe(id, (n) => {
        if (n.kind !== 'events') return;
        heard.push({ motebit: id, seqs: n.events.map((e) => e.seq) });
        order.push('news');
      });
    }
    const events = device.events(300);
    const batches = [events.slice(0, 200), events.slice(200, 250), events.slice(250)];
    const before = store.groupCommits;
    await Promise.all([
      ...batches.map((batch) => store.appendBatch(motebit.motebitId, batch).then(() => order.push('ack'))),
      store.appendBatch(other.motebit.motebitId, other.device.events(2)).then(() => order.push('ack')),
    ]);
    expect(store.groupCommits - before).toBe(1);
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    expect(heard).toEqual([
      { motebit: motebit.motebitId, seqs: range(1, 256) },
      { motebit: motebit.motebitId, seqs: range(257, 300) },
      { motebit: other.motebit.motebitId, seqs: [1, 2] },
    ]);
    expect(order).toEqual(['news', 'news', 'news', 'ack', 'ack', 'ack', 'ack']);
  });

  it('tells nothing of a write that failed', async () => {
    const { motebit, device } = await enrolled();
    const stranger = new TestMotebit().device();
    const heard: number[][] = [];
    store.subscribe(motebit.motebitId, (n) => {
      if (n.kind === 'events') heard.push(n.events.map((e) => e.seq));
    });
    await Promise.allSettled([store.appendBatch(stranger.motebit.motebitId, stranger.events(1)), store.appendBatch(motebit.motebitId, device.events(2))]);
    expect(heard).toEqual([[1, 2]]);
  });

  it('applies and answers appends in the order they were made (appendsInCallOrder), across groups too', async () => {
    expect(store.appendsInCallOrder).toBe(true);
    const { motebit, device } = await enrolled();
    const events = device.events(40);
    const answered: number[] = [];
    const pending = [];
    for (let i = 0; i < 8; i++) {
      pending.push(store.appendBatch(motebit.motebitId, events.slice(i * 5, i * 5 + 5)).then((r) => answered.push(r.head)));
      if (i === 3) await new Promise((resolve) => setImmediate(resolve)); // the first four commit as a group of their own
    }
    await Promise.all(pending);
    expect(answered).toEqual([5, 10, 15, 20, 25, 30, 35, 40]);
  });
});
