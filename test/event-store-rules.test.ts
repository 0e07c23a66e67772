// The device store's rules one by one (issue 15, item 7: each test was written against a mutant of
// main/store/event-store.ts that no other test caught). Real SQLite files, real keys.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { compareEvents } from '../shared/clock.ts';
import { hashEvent, sealEvent, unsealed } from '../shared/event.ts';
import { newSnapshotId } from '../shared/ids.ts';
import { genesisEntry, addEntry, memberFromSecret } from '../shared/membership/author.ts';
import { applyEntry, verifyLog, type MembershipState } from '../shared/membership/log.ts';
import type { JsonValue, SealedEvent } from '../shared/portable/event.ts';
import { coversOf } from '../shared/snapshot/content.ts';
import { ChainError, EventStore, InvalidWriteError, currentSide, otherSide, type ConflictRecord } from '../main/store/event-store.ts';
import { StoreOpenError } from '../main/store/database.ts';
import { deviceLab, pushAll, tempDir, type TestDevice } from './support/motebit.ts';
import { randomBytes } from 'node:crypto';
import { openHandles } from './support/open-files.ts';

const lab = deviceLab('store-rules');
const device = (name: string): TestDevice => lab.device(name);

/** The rows of the materialised state, as stored (each writers map parsed: its key order is not part of it). */
function stateRows(d: TestDevice): unknown[] {
  const raw = new Database(d.path, { readonly: true });
  try {
    return (raw.prepare('SELECT * FROM state ORDER BY entity').all() as { writers: string }[]).map((row) => ({ ...row, writers: JSON.parse(row.writers) as unknown }));
  } finally {
    raw.close();
  }
}

/** The conflict between two given events, as `d` holds it. */
const conflictOf = (d: TestDevice, x: SealedEvent, y: SealedEvent): ConflictRecord | undefined =>
  d.store.conflicts({ filter: 'all' }).find((c) => new Set([c.loser.eventId, c.winner.eventId]).size === 2 && [x.event_id, y.event_id].every((id) => id === c.loser.eventId || id === c.winner.eventId));

describe('opening and closing', () => {
  it('a store takes an identity key or a membership log, one of the two, and a refused open leaves no file open', () => {
    const a = device('a');
    const { motebitId, deviceId, identityPublicKey } = a.store.identity;
    const path = join(a.path, '..', 'other.db');
    expect(() => EventStore.open(path, { motebitId, deviceId })).toThrow(new TypeError('a store is given an identity key or a membership log, one of the two'));
    expect(() => EventStore.open(path, { motebitId, deviceId, identityPublicKey, membership: () => null })).toThrow(TypeError);
    expect(openHandles(path)).toBe(0);

    a.store.close();
    const stranger = 'dv_BBBBBBBBBBBBBBBBBBBBBB';
    expect(() => EventStore.open(a.path, { motebitId, deviceId: stranger, identityPublicKey })).toThrow(
      new StoreOpenError(`this store belongs to device ${deviceId}, not ${stranger}; use that device's own home`),
    );
    expect(openHandles(a.path)).toBe(0);
  });

  it('a closed store refuses to be used, and closing it again is harmless', () => {
    const a = device('a');
    a.store.put('x', 1);
    a.store.close();
    expect(() => a.store.get('x')).toThrow(/not open/);
    expect(() => a.store.close()).not.toThrow();
    expect(openHandles(a.path)).toBe(0);
  });

  it('its size is its pages, as the file holds them once closed', () => {
    const a = device('a');
    for (let i = 0; i < 50; i++) a.store.put(`m/${i}`, 'x'.repeat(500));
    const bytes = a.store.databaseBytes();
    a.store.close();
    expect(bytes).toBe(statSync(a.path).size);
  });
});

describe('local writes', () => {
  it('refuses a bad write with its reason, and takes one at each limit', () => {
    const a = device('a');
    const error = (run: () => unknown): unknown => {
      try {
        run();
      } catch (e) {
        return e;
      }
      return null;
    };
    const unknownOp = error(() => a.store.append({ entity: 'k', op: 'frob' as 'set', payload: 1 }));
    expect(unknownOp).toBeInstanceOf(InvalidWriteError);
    expect(unknownOp).toMatchObject({ name: 'InvalidWriteError', message: 'unknown operation frob: use set or delete' });
    const nested = (depth: number): JsonValue => (depth === 0 ? 1 : [nested(depth - 1)]);
    expect(() => a.store.put('deep', nested(65))).toThrow(new InvalidWriteError('the value of deep is nested more than 64 levels deep'));
    expect(() => a.store.put('fn', (() => 1) as unknown as JsonValue)).toThrow(new InvalidWriteError('the value of fn is not JSON'));
    expect(() => a.store.put('big', 'x'.repeat(65_535))).toThrow(new InvalidWriteError('the value of big is 65537 bytes; the limit is 65536'));
    expect(a.store.eventCount()).toBe(0);
    a.store.put('deep', nested(64));
    a.store.put('big', 'x'.repeat(65_534)); // 65,536 bytes with its quotes
    expect(a.store.get('big')?.value).toHaveLength(65_534);
  });

  it('a delete carries no value, whatever the write gave; an empty batch writes nothing', () => {
    const a = device('a');
    expect(a.store.appendMany([])).toEqual([]);
    expect(a.store.frontier()).toEqual({ lamport: 0, heads: {} });
    const [gone, alsoGone] = a.store.appendMany([
      { entity: 'k', op: 'delete', payload: 'ignored' },
      { entity: 'j', op: 'delete', payload: undefined as unknown as JsonValue },
    ]);
    expect([gone!.payload, alsoGone!.payload]).toEqual([null, null]);
    expect(a.store.get('k')).toMatchObject({ deleted: true, value: null });
    expect([...a.store.events()].map((e) => e.payload)).toEqual([null, null]);
  });
});

describe('remote events', () => {
  it('counts the conflicts a batch made', () => {
    const a = device('a');
    const b = device('b');
    a.store.put('k', 'a');
    b.store.put('k', 'b');
    b.store.put('j', 'b');
    expect(a.store.applyRemote(pushAll(b))).toEqual({ applied: 2, duplicates: 0, held: 0, newConflicts: 1 });
    expect(a.store.openConflictCount()).toBe(1);
  });

  it('held events that were not genuine are dropped when the genuine ones arrive sealed', () => {
    const a = device('a');
    const b = device('b');
    for (let i = 1; i <= 3; i++) a.store.put(`m/${i}`, i);
    const first = pushAll(a); // sealed on the 3rd only
    for (let i = 4; i <= 5; i++) a.store.put(`m/${i}`, i);
    const second = pushAll(a); // sealed on the 5th
    // A relay makes up a's five events, unsealed and chained: b can only hold them back.
    const forged: SealedEvent[] = [];
    let prev = first[0]!.prev;
    for (const event of [...first, ...second]) {
      const fake = { ...unsealed(event), prev, payload: 'made up' } as SealedEvent;
      forged.push(fake);
      prev = hashEvent(fake);
    }
    expect(b.store.applyRemote(forged)).toMatchObject({ applied: 0, held: 5 });
    // The genuine first three break the chain of what was held: all of it goes, the made-up 4 and 5 too.
    expect(b.store.applyRemote(first)).toEqual({ applied: 3, duplicates: 0, held: 0, newConflicts: 0 });
    expect(b.store.heldCount()).toBe(0);
    expect(b.store.applyRemote(second)).toEqual({ applied: 2, duplicates: 0, held: 0, newConflicts: 0 });
    expect(b.store.stateDigest()).toBe(a.store.stateDigest());
  });

  it('an event that reuses the id of another event is a fork, and nothing of it is applied', () => {
    const a = device('a');
    const b = device('b');
    const r = device('r');
    const taken = a.store.put('a/1', 'first');
    r.store.applyRemote(pushAll(a));
    b.store.put('b/1', 'second');
    const [own] = pushAll(b);
    const reused = sealEvent({ ...unsealed(own!), event_id: taken.event_id } as SealedEvent, b.credentials);
    const thrown = (() => {
      try {
        r.store.applyRemote([reused]);
      } catch (error) {
        return error;
      }
    })();
    expect(thrown).toBeInstanceOf(ChainError);
    expect(thrown).toMatchObject({ code: 'fork', message: `event id ${taken.event_id} is already used by another event`, deviceId: b.deviceId, deviceSeq: 1 });
    expect(r.store.get('b/1')).toBeUndefined();
    expect(r.store.eventCount()).toBe(1);
  });
});

describe('conflicts', () => {
  it('the earliest settling write in the total order settles a conflict, in whatever order they arrive', () => {
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(device) as [TestDevice, TestDevice, TestDevice, TestDevice];
    const fromA = a.store.put('k', 'a');
    const fromB = b.store.put('k', 'b');
    const batchA = pushAll(a);
    const batchB = pushAll(b);
    const settle = (d: TestDevice): { event: SealedEvent; batch: SealedEvent[] } => {
      d.store.applyRemote(batchA);
      d.store.applyRemote(batchB);
      const event = d.store.put('k', `settled on ${d.deviceId}`);
      return { event, batch: pushAll(d) };
    };
    const [first, second] = [settle(c), settle(d)].sort((x, y) => compareEvents(x.event, y.event));
    expect(first!.event.clock.l).toBe(second!.event.clock.l); // the same Lamport time: the order is decided by device
    const orders = [
      [batchA, batchB, first!.batch, second!.batch],
      [batchA, batchB, second!.batch, first!.batch],
      [first!.batch, second!.batch, batchA, batchB], // the conflict is found after both settling writes
      [second!.batch, first!.batch, batchB, batchA],
    ];
    orders.forEach((order, i) => {
      const r = device(`r${i}`);
      for (const batch of order) r.store.applyRemote(batch);
      expect(conflictOf(r, fromA, fromB)?.resolvedBy, `order ${i}`).toBe(first!.event.event_id);
    });
  });

  it('marks several conflicts reviewed, all or none', () => {
    const [a, b, c] = ['a', 'b', 'c'].map(device) as [TestDevice, TestDevice, TestDevice];
    for (const d of [a, b, c]) d.store.put('k', d.deviceId);
    a.store.applyRemote(pushAll(b));
    a.store.applyRemote(pushAll(c));
    const ids = a.store.conflicts().map((x) => x.id);
    expect(ids).toHaveLength(3);
    expect(() => a.store.markReviewedMany([ids[0]!, 9999])).toThrow(new InvalidWriteError('there is no conflict 9999'));
    expect(a.store.conflictCounts()).toEqual({ open: 3, reviewed: 0, settled: 0 });
    a.store.markReviewedMany([ids[0]!, ids[1]!, ids[0]!]);
    expect(a.store.conflicts({ filter: 'reviewed' }).map((x) => x.id)).toEqual([ids[0], ids[1]]);
    expect(a.store.conflictCounts()).toEqual({ open: 1, reviewed: 2, settled: 0 });
  });

  it('resolving several conflicts of one entity: the one with the lowest id decides what is kept', () => {
    const [a, b, c] = ['a', 'b', 'c'].map(device) as [TestDevice, TestDevice, TestDevice];
    for (const d of [a, b, c]) d.store.put('k', `from ${d.deviceId}`);
    a.store.applyRemote(pushAll(b));
    a.store.applyRemote(pushAll(c));
    const all = a.store.conflicts();
    expect(all).toHaveLength(3);
    const lowest = all[0]!;
    // "other": the side the entity does not hold now (the loser when a third write holds it).
    const kept = lowest.loser.eventId === lowest.currentEventId ? lowest.winner : lowest.loser;
    const before = a.store.eventCount();
    expect(() => a.store.resolveConflicts([lowest.id, 9998, 9999], 'other')).toThrow(new InvalidWriteError('there is no conflict 9998, 9999; nothing was changed'));
    expect(a.store.eventCount()).toBe(before);
    const written = a.store.resolveConflicts(all.map((x) => x.id).reverse(), 'other');
    expect(written).toHaveLength(1);
    expect(written[0]!.payload).toEqual(kept.value);
    expect(a.store.conflicts()).toEqual([]);
  });

  it('keeping the current value of a deleted entity writes a delete', () => {
    const a = device('a');
    const b = device('b');
    a.store.put('other', 1);
    a.store.put('other', 2);
    const deletion = a.store.delete('k'); // a later Lamport time than b's write: the delete wins
    b.store.put('k', 'b');
    a.store.applyRemote(pushAll(b));
    const [conflict] = a.store.conflicts();
    expect(conflict!.currentEventId).toBe(deletion.event_id);
    expect(currentSide(conflict!)?.eventId).toBe(deletion.event_id);
    expect(otherSide(conflict!).value).toBe('b');
    expect(stateRows(a)).toContainEqual(expect.objectContaining({ entity: 'k', deleted: 1, payload: null })); // a tombstone stores no value
    expect(a.store.keptValue(conflict!, 'current')).toEqual({ entity: 'k', op: 'delete', payload: null });
    const kept = a.store.resolveConflict(conflict!.id, deletion.event_id);
    expect([kept.op, kept.payload]).toEqual(['delete', null]);
    expect(a.store.get('k')).toMatchObject({ deleted: true, eventId: kept.event_id });
  });

  it('keeping the current value of a conflict that a third write superseded keeps that third value', () => {
    const [a, b, c] = ['a', 'b', 'c'].map(device) as [TestDevice, TestDevice, TestDevice];
    const fromA = a.store.put('k', 'a');
    const fromB = b.store.put('k', 'b');
    c.store.put('other', 1);
    const third = c.store.put('k', 'c'); // concurrent with both, and later: it holds the entity
    a.store.applyRemote(pushAll(b));
    a.store.applyRemote(pushAll(c));
    const conflict = conflictOf(a, fromA, fromB)!;
    expect(conflict.currentEventId).toBe(third.event_id);
    expect(currentSide(conflict)).toBeNull();
    expect(() => a.store.resolveConflict(9999, third.event_id)).toThrow(new InvalidWriteError('there is no conflict 9999'));
    const kept = a.store.resolveConflict(conflict.id, third.event_id);
    expect(kept.payload).toBe('c');
    expect(a.store.conflicts()).toEqual([]);
  });
});

describe('the log and its digests', () => {
  it('the events digest is a hash of every writer\'s chain head', () => {
    const a = device('a');
    const b = device('b');
    const empty = a.store.eventsDigest();
    expect(empty).toMatch(/^[0-9a-f]{64}$/);
    a.store.put('k', 1);
    const one = a.store.eventsDigest();
    expect(one).not.toBe(empty);
    b.store.applyRemote(pushAll(a));
    expect(b.store.eventsDigest()).toBe(one);
    a.store.put('k', 2);
    expect(a.store.eventsDigest()).not.toBe(one);
  });

  it('rebuilding the state from the log keeps what later events need: each writer, each conflict count', () => {
    const a = device('a');
    const b = device('b');
    a.store.put('k', 'a1');
    a.store.put('solo', 1);
    b.store.put('k', 'b1');
    a.store.applyRemote(pushAll(b));
    const rows = stateRows(a);
    const raw = new Database(a.path);
    raw.prepare("INSERT INTO state (entity, event_id, lamport, device_id, deleted, payload, writers, conflicts) VALUES ('ghost', 'e', 1, 'dv_x', 0, '1', '{}', 0)").run();
    raw.close();
    expect(a.store.get('ghost')).toBeDefined();
    expect(a.store.rebuildState()).toBe(2);
    expect(stateRows(a)).toEqual(rows);
    expect(a.store.entityCount()).toBe(2);
    // b writes again without having seen a: still a conflict with a's write.
    b.store.put('k', 'b2');
    expect(a.store.applyRemote(pushAll(b)).newConflicts).toBe(1);
    // A write after seeing every side settles both conflicts.
    a.store.put('k', 'a2');
    expect(a.store.conflicts()).toEqual([]);
    expect(a.store.conflictCounts()).toEqual({ open: 0, reviewed: 0, settled: 2 });
  });

  it('a sealed run of a writer starts right after the given event, unbroken, and ends at its last seal', () => {
    const a = device('a');
    const b = device('b');
    for (let i = 0; i < 3; i++) a.store.put('k', i);
    b.store.applyRemote(pushAll(a)); // sealed on 3
    for (let i = 3; i < 5; i++) a.store.put('k', i);
    a.store.put('last', 6);
    b.store.applyRemote(pushAll(a)); // sealed on 6
    a.store.put('tail', 7);
    a.store.put('tail', 8); // unsealed
    const seqs = (events: SealedEvent[]): number[] => events.map((e) => e.device_seq);
    expect(seqs(a.store.sealedRun(a.deviceId, 0, 100))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(seqs(a.store.sealedRun(a.deviceId, 0, 5))).toEqual([1, 2, 3]);
    expect(seqs(a.store.sealedRun(a.deviceId, 0, 2))).toEqual([]);
    expect(seqs(a.store.sealedRun(a.deviceId, 2, 100))).toEqual([3, 4, 5, 6]);
    expect(seqs(a.store.sealedRun(a.deviceId, 6, 100))).toEqual([]);
    expect(seqs(b.store.sealedRun(a.deviceId, 0, 100))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(a.store.sealedRun(a.deviceId, 0, 100).at(-1)!.seal).toBeDefined();

    // Below a snapshot the device no longer holds every event: no run starts where one is missing.
    const acks = [{ deviceId: b.deviceId, seen: b.store.frontier().heads }];
    const content = a.store.snapshots.content({ snapshotId: newSnapshotId(), createdAt: 1_000, writers: acks, relay: null });
    expect(a.store.snapshots.prune(coversOf(content), acks)).toBe(4); // 1-4, superseded by 5
    expect(a.store.floor(a.deviceId)).toBe(6); // as far as the relay acknowledged
    expect(a.store.floor('dv_nobodyAAAAAAAAAAAAAAA')).toBe(0);
    expect(seqs(a.store.sealedRun(a.deviceId, 0, 100))).toEqual([]);
    expect(seqs(a.store.sealedRun(a.deviceId, 4, 100))).toEqual([5, 6]);
    expect(a.store.eventHash(a.deviceId, 6)).toBe(hashEvent(a.store.sealedRun(a.deviceId, 5, 1)[0]!));
    expect(a.store.eventHash(a.deviceId, 4)).toBeUndefined();
  });

  it('a pruned event served again is a duplicate, up to and including the floor', () => {
    const a = device('a');
    const b = device('b');
    for (let i = 0; i < 4; i++) b.store.put('j', i);
    const fromB = pushAll(b);
    a.store.applyRemote(fromB);
    a.store.put('j', 'a, after all of b'); // supersedes b's last event too
    b.store.applyRemote(pushAll(a));
    const acks = [{ deviceId: b.deviceId, seen: b.store.frontier().heads }];
    const content = a.store.snapshots.content({ snapshotId: newSnapshotId(), createdAt: 1_000, writers: acks, relay: null });
    expect(a.store.snapshots.prune(coversOf(content), acks)).toBe(4);
    expect(a.store.floor(b.deviceId)).toBe(4);
    expect(a.store.eventHash(b.deviceId, 4)).toBeUndefined(); // the event at the floor itself is gone
    const digest = a.store.stateDigest();
    expect(a.store.applyRemote(fromB)).toEqual({ applied: 0, duplicates: 4, held: 0, newConflicts: 0 });
    expect(a.store.stateDigest()).toBe(digest);
  });
});

describe('what sync keeps', () => {
  it('the push cursor only rises when acknowledged, and falls only when the relay lost events', () => {
    const a = device('a');
    for (let i = 0; i < 5; i++) a.store.put('k', i);
    a.store.markPushed(5);
    a.store.markPushed(3);
    expect(a.store.pendingOutCount()).toBe(0);
    expect(a.store.lowerPushed(7)).toBe(0);
    expect(a.store.lowerPushed(5)).toBe(0);
    expect(a.store.pendingOutCount()).toBe(0);
    expect(a.store.lowerPushed(2)).toBe(3);
    expect(a.store.pendingOutCount()).toBe(3);
    expect(a.store.lowerPushed(-4)).toBe(2);
    expect(a.store.getCursor('pushed_seq')).toBe(0);
    expect(a.store.pendingOutCount()).toBe(5);
  });

  it('forgets a rejected copy once the event was applied intact, unless its writer is being repaired', () => {
    const a = device('a');
    const b = device('b');
    for (let i = 0; i < 3; i++) a.store.put('k', i);
    const batch = pushAll(a);
    const rejected = (relaySeq: number, deviceSeq: number) => ({ relaySeq, eventId: `e${deviceSeq}`, deviceId: a.deviceId, deviceSeq, code: 'bad_signature', message: 'altered' });
    b.store.recordRejected([rejected(1, 1), rejected(9, 12)]);
    b.store.applyRemote(batch);
    b.store.forgetSettledRejections();
    expect(b.store.rejectedEvents().map((r) => r.deviceSeq)).toEqual([12]);
    b.store.recordRejected([rejected(1, 1)]);
    b.store.ledger.noteFailure({ deviceId: a.deviceId, relaySeq: 1, deviceSeq: 1, code: 'bad_signature', message: 'altered' }, 1_000);
    b.store.forgetSettledRejections();
    expect(b.store.rejectedEvents().map((r) => r.deviceSeq)).toEqual([1, 12]);
    expect(b.store.rejectedCount()).toBe(2);
  });
});

describe('a motebit with a membership log', () => {
  it('writes name the log position; a device without the log neither writes nor takes events; a new member is admitted once the log says so', async () => {
    const dir = tempDir('store-members');
    const stores: EventStore[] = [];
    try {
      const laptop = memberFromSecret('device', randomBytes(32), 'laptop');
      const phone = memberFromSecret('device', randomBytes(32), 'phone');
      const recovery = memberFromSecret('recovery', randomBytes(32), null);
      const { entry, contentKey } = await genesisEntry(laptop, recovery.key, 1_000);
      const founded = verifyLog([entry]);
      const withPhone: MembershipState = applyEntry(founded, await addEntry(founded, laptop, phone.key, contentKey, 2_000));
      let known: MembershipState | null = null;
      const open = (name: string, deviceId: string, membership: () => MembershipState | null): EventStore => {
        const store = EventStore.open(join(dir.path, `${name}.db`), { motebitId: founded.motebitId, deviceId, membership });
        stores.push(store);
        return store;
      };
      const onLaptop = open('laptop', laptop.key.id, () => known);
      const onPhone = open('phone', phone.key.id, () => withPhone);
      onPhone.put('p/1', 'from the phone');
      const fromPhone = onPhone.outboxBatch(10, { deviceKey: phone.signing, cert: null });
      expect(fromPhone[0]!.m).toBe(1);

      expect(() => onLaptop.put('x', 1)).toThrow(new Error('this device holds no membership log yet: sync once before writing'));
      expect(() => onLaptop.applyRemote(fromPhone)).toThrow(/is refused: this device holds no membership log yet/);
      known = founded;
      expect(onLaptop.put('x', 1).m).toBe(0);
      expect(() => onLaptop.applyRemote(fromPhone)).toThrow(ChainError);
      known = withPhone;
      expect(onLaptop.applyRemote(fromPhone)).toMatchObject({ applied: 1 });
      expect(onLaptop.put('x', 2).m).toBe(1);
      expect(onLaptop.snapshots.content({ snapshotId: newSnapshotId(), createdAt: 1_000, writers: [], relay: null }).m).toBe(1);
    } finally {
      for (const store of stores) store.close();
      dir.remove();
    }
  });
});
