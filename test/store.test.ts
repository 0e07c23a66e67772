import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { EventStore, InvalidWriteError } from '../main/store/event-store.ts';
import { StoreOpenError } from '../main/store/database.ts';
import { MIGRATIONS } from '../main/store/migrations.ts';
import { deviceLab, pushAll, type TestDevice } from './support/motebit.ts';
import { openHandles } from './support/open-files.ts';

const lab = deviceLab('store');
const device = (name: string): TestDevice => lab.device(name);

describe('the local store', () => {
  it('is SQLite in WAL mode at the latest schema version', () => {
    const a = device('a');
    a.store.put('memory/1', { text: 'hello' });
    a.store.close();
    const raw = new Database(a.path, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(raw.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(raw.prepare('SELECT name FROM sqlite_master WHERE type = ? ORDER BY name').pluck().all('table')).toEqual(
      expect.arrayContaining(['events', 'state', 'conflicts', 'cursors', 'heads', 'staged']),
    );
    raw.close();
  });

  it('appends, reads back the winner, and keeps a delete as a tombstone', () => {
    const a = device('a');
    const first = a.store.put('memory/42', { text: 'one' });
    const second = a.store.put('memory/42', { text: 'two' });
    expect(second.device_seq).toBe(first.device_seq + 1);
    expect(second.prev).not.toBe(first.prev);
    expect(second.clock.l).toBeGreaterThan(first.clock.l);
    expect(a.store.get('memory/42')).toMatchObject({ value: { text: 'two' }, deleted: false, eventId: second.event_id });
    a.store.delete('memory/42');
    expect(a.store.get('memory/42')).toMatchObject({ deleted: true, value: null });
    expect(a.store.eventCount()).toBe(3);
  });

  it('keeps every appended event across a reopen', () => {
    const a = device('a');
    a.store.appendMany([
      { entity: 'x', op: 'set', payload: 1 },
      { entity: 'y', op: 'set', payload: [1, 2] },
    ]);
    const digest = a.store.stateDigest();
    a.store.close();
    const reopened = EventStore.open(a.path, a.store.identity);
    lab.keep({ ...a, store: reopened });
    expect(reopened.eventCount()).toBe(2);
    expect(reopened.stateDigest()).toBe(digest);
    expect(reopened.get('y')?.value).toEqual([1, 2]);
  });

  it('refuses to open another device home, and a store from a newer schema', () => {
    const a = device('a');
    a.store.close();
    expect(() => EventStore.open(a.path, { ...a.store.identity, deviceId: 'dv_BBBBBBBBBBBBBBBBBBBBBB' })).toThrow(StoreOpenError);
    const raw = new Database(a.path);
    raw.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    raw.close();
    expect(() => EventStore.open(a.path, a.store.identity)).toThrow(/newer Motebit Sync/);
  });

  it('a store from a newer schema is refused as a StoreOpenError, in words that say to update, and left closed', () => {
    const a = device('a');
    a.store.close();
    const raw = new Database(a.path);
    raw.pragma(`user_version = ${MIGRATIONS.length + 7}`);
    raw.close();
    let refusal: unknown;
    try {
      EventStore.open(a.path, a.store.identity);
    } catch (error) {
      refusal = error;
    }
    expect(String(refusal)).toBe(
      `StoreOpenError: this store was written by a newer Motebit Sync (schema ${MIGRATIONS.length + 7}, this version knows ${MIGRATIONS.length}); update the app before opening it`,
    );
    expect(openHandles(a.path)).toBe(0); // no file of the store (database, -wal, -shm) is still open
  });

  it('rejects invalid writes with a clear error and writes nothing', () => {
    const a = device('a');
    expect(() => a.store.put('', 1)).toThrow(InvalidWriteError);
    expect(() => a.store.put('bad\u0000name', 1)).toThrow(/control characters/);
    expect(() => a.store.put('big', 'x'.repeat(70_000))).toThrow(/limit is 65536/);
    expect(() => a.store.appendMany([{ entity: 'ok', op: 'set', payload: 1 }, { entity: '', op: 'set', payload: 2 }])).toThrow(InvalidWriteError);
    expect(a.store.eventCount()).toBe(0);
  });

  it('applies a remote batch once: the same batch again is a no-op', () => {
    const a = device('a');
    const b = device('b');
    a.store.put('memory/1', 'from a');
    a.store.put('memory/2', 'also from a');
    const batch = pushAll(a);
    expect(b.store.applyRemote(batch)).toMatchObject({ applied: 2, duplicates: 0 });
    expect(b.store.applyRemote(batch)).toMatchObject({ applied: 0, duplicates: 2 });
    expect(b.store.eventCount()).toBe(2);
    expect(b.store.stateDigest()).toBe(a.store.stateDigest());
    expect(b.store.eventsDigest()).toBe(a.store.eventsDigest());
  });

  it('a sequential edit across devices is not a conflict', () => {
    const a = device('a');
    const b = device('b');
    a.store.put('memory/1', 'draft');
    b.store.applyRemote(pushAll(a));
    b.store.put('memory/1', 'edited on b after reading a');
    a.store.applyRemote(pushAll(b));
    for (const d of [a, b]) {
      expect(d.store.conflicts({ includeResolved: true })).toEqual([]);
      expect(d.store.get('memory/1')?.value).toBe('edited on b after reading a');
    }
  });

  it('records a concurrent write as one conflict on both devices, with both values and the winner', () => {
    const a = device('a');
    const b = device('b');
    const fromA = a.store.put('memory/7', 'a says');
    const fromB = b.store.put('memory/7', 'b says');
    a.store.applyRemote(pushAll(b));
    b.store.applyRemote(pushAll(a));
    const [onA] = a.store.conflicts();
    const [onB] = b.store.conflicts();
    expect(a.store.conflicts()).toHaveLength(1);
    expect(b.store.conflicts()).toHaveLength(1);
    expect(onA).toMatchObject({ entity: 'memory/7', resolvedBy: null, reviewedAt: null });
    expect(new Set([onA!.loser.value, onA!.winner.value])).toEqual(new Set(['a says', 'b says']));
    expect([onB!.loser.eventId, onB!.winner.eventId]).toEqual([onA!.loser.eventId, onA!.winner.eventId]);
    expect(onA!.currentEventId).toBe(onA!.winner.eventId);
    expect(a.store.get('memory/7')?.eventId).toBe(b.store.get('memory/7')?.eventId);
    expect([fromA.event_id, fromB.event_id]).toContain(onA!.winner.eventId);
    expect(a.store.stateDigest()).toBe(b.store.stateDigest());
  });

  it('a conflict can be marked reviewed, and resolved only by a new ordinary event that wins everywhere', () => {
    const a = device('a');
    const b = device('b');
    a.store.put('memory/7', 'a says');
    b.store.put('memory/7', 'b says');
    a.store.applyRemote(pushAll(b));
    b.store.applyRemote(pushAll(a));
    const [conflict] = a.store.conflicts();
    a.store.markReviewed(conflict!.id);
    expect(a.store.conflict(conflict!.id)?.reviewedAt).toEqual(expect.any(Number));
    expect(() => a.store.markReviewed(9999)).toThrow(InvalidWriteError);
    expect(() => a.store.resolveConflict(conflict!.id, 'not-a-side')).toThrow(/not a side/);

    const before = a.store.eventCount();
    const resolution = a.store.resolveConflict(conflict!.id, conflict!.loser.eventId);
    expect(a.store.eventCount()).toBe(before + 1); // an appended event: the audit trail stays whole
    expect(resolution.payload).toEqual(conflict!.loser.value);
    b.store.applyRemote(pushAll(a));
    for (const d of [a, b]) {
      expect(d.store.get('memory/7')).toMatchObject({ value: conflict!.loser.value, eventId: resolution.event_id });
      expect(d.store.conflicts()).toEqual([]); // open ones
      expect(d.store.conflicts({ includeResolved: true })[0]?.resolvedBy).toBe(resolution.event_id);
    }
  });

  it('a conflict is settled on a device that received the settling write before one of its sides', () => {
    const a = device('a');
    const b = device('b');
    const r = device('r');
    a.store.put('memory/9', 'a');
    const fromA = pushAll(a);
    b.store.put('memory/9', 'b');
    const fromB = pushAll(b);
    a.store.applyRemote(fromB);
    const settling = a.store.put('memory/9', 'a again, after seeing b');
    const later = pushAll(a);
    r.store.applyRemote([...fromA, ...later]); // a's whole chain first
    r.store.applyRemote(fromB); // the conflict appears only now, already settled
    const [conflict] = r.store.conflicts({ includeResolved: true });
    expect(conflict?.resolvedBy).toBe(settling.event_id);
    expect(r.store.conflicts()).toEqual([]);
    expect(r.store.conflicts({ includeResolved: true })).toEqual(a.store.conflicts({ includeResolved: true }).map((c) => ({ ...c, detectedAt: expect.any(Number) })));
  });

  it('holds back an unsealed tail until a seal covers it, and keeps it across a reopen', () => {
    const a = device('a');
    const b = device('b');
    for (let i = 0; i < 5; i++) a.store.put(`m/${i}`, i);
    const batch = pushAll(a); // sealed on the 5th event only
    expect(b.store.applyRemote(batch.slice(0, 3))).toMatchObject({ applied: 0, held: 3 });
    expect(b.store.heldCount()).toBe(3);
    b.store.close();
    const reopened = EventStore.open(b.path, b.store.identity);
    lab.keep({ ...b, store: reopened });
    expect(reopened.applyRemote(batch.slice(3))).toMatchObject({ applied: 5, held: 0 });
    expect(reopened.heldCount()).toBe(0);
    expect(reopened.stateDigest()).toBe(a.store.stateDigest());
  });

  it('rebuilds the materialised state from the log alone to the same digest', () => {
    const a = device('a');
    const b = device('b');
    for (let i = 0; i < 20; i++) a.store.put(`k/${i % 7}`, i);
    for (let i = 0; i < 20; i++) b.store.put(`k/${i % 5}`, -i);
    b.store.delete('k/3');
    a.store.applyRemote(pushAll(b));
    const digest = a.store.stateDigest();
    expect(a.store.rebuildState()).toBe(7);
    expect(a.store.stateDigest()).toBe(digest);
  });

  it('tracks what is left to push', () => {
    const a = device('a');
    a.store.put('x', 1);
    a.store.put('y', 2);
    expect(a.store.pendingOutCount()).toBe(2);
    const batch = a.store.outboxBatch(1, a.credentials);
    expect(batch).toHaveLength(1);
    expect(batch[0]!.seal).toBeDefined();
    a.store.markPushed(batch[0]!.device_seq);
    expect(a.store.pendingOutCount()).toBe(1);
    expect(a.store.unpushed(10).map((e) => e.entity)).toEqual(['y']);
  });
});

