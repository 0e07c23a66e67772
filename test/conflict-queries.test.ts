// The store's conflict queries and bulk resolution (real SQLite files, events exchanged between stores as
// sync would): the open / reviewed / settled lists, exact entity prefixes, the device that wrote the current
// value, why a winner wins (from the clocks), and keeping the current or the other value, all or none.
import { describe, expect, it } from 'vitest';
import { InvalidWriteError, winReason } from '../main/store/event-store.ts';
import { compareEvents, type Clocked } from '../shared/clock.ts';
import { deviceLab, pushAll, type TestDevice } from './support/motebit.ts';

const lab = deviceLab('conflict-queries');
const device = (name: string): TestDevice => lab.device(name);

/** Two devices that wrote `entities` without seeing each other, then exchanged everything. */
let pairs = 0;
function conflicted(entities: readonly string[], write: (d: TestDevice, name: 'a' | 'b', entity: string) => void = (d, name, entity) => void d.store.put(entity, `${name} ${entity}`)) {
  pairs++;
  const a = device(`a${pairs}`);
  const b = device(`b${pairs}`);
  for (const entity of entities) write(a, 'a', entity);
  for (const entity of entities) write(b, 'b', entity);
  a.store.applyRemote(pushAll(b));
  b.store.applyRemote(pushAll(a));
  return { a, b };
}

const clocked = (l: number, device: string, event: string): Clocked => ({ clock: { l, v: {} }, device_id: device, device_seq: 1, event_id: event });

describe('conflict queries', () => {
  it('why a winner wins follows the clocks: a later clock, else (equal clocks) the device order', () => {
    const cases: [Clocked, Clocked, 'clock' | 'device'][] = [
      [clocked(5, 'dv_a', 'e1'), clocked(4, 'dv_z', 'e9'), 'clock'], // later clock beats a later device
      [clocked(5, 'dv_z', 'e1'), clocked(4, 'dv_a', 'e9'), 'clock'],
      [clocked(4, 'dv_z', 'e1'), clocked(4, 'dv_a', 'e9'), 'device'],
    ];
    for (const [winner, loser, reason] of cases) {
      expect(compareEvents(winner, loser)).toBeGreaterThan(0); // the cases are real winners
      expect(winReason(winner, loser)).toBe(reason);
    }
    // from stores: same clocks on both sides (each device's first write) leave it to the device order
    const { a } = conflicted(['memory/1']);
    expect(a.store.conflicts()[0]!.winReason).toBe('device');
    const { a: a2 } = conflicted(['memory/2'], (d, name, entity) => {
      if (name === 'b') d.store.put('other/warm-up', 1); // b's write comes one clock later
      d.store.put(entity, name);
    });
    const [later] = a2.store.conflicts({ entityPrefix: 'memory/2' });
    expect(later!.winReason).toBe('clock');
    expect(later!.winner.value).toBe('b');
  });

  it('lists open, reviewed and settled conflicts apart, by exact entity prefix and by the writer of the current value', () => {
    const { a, b } = conflicted(['memory/1', 'memory/2', 'memory_x/3', 'mem%/4', 'notes/1']);
    expect(a.store.conflicts({ filter: 'open' })).toHaveLength(5);
    // a prefix is matched exactly: no LIKE wildcards (% and _), no case folding
    expect(a.store.conflicts({ entityPrefix: 'memory/' }).map((c) => c.entity)).toEqual(['memory/1', 'memory/2']);
    expect(a.store.conflicts({ entityPrefix: 'memory_' }).map((c) => c.entity)).toEqual(['memory_x/3']);
    expect(a.store.conflicts({ entityPrefix: 'mem%' }).map((c) => c.entity)).toEqual(['mem%/4']);
    expect(a.store.conflicts({ entityPrefix: 'MEMORY/' })).toEqual([]);
    // the device that wrote the current value: every conflict on exactly one side
    const byA = a.store.conflicts({ currentDevice: a.deviceId }).map((c) => c.entity);
    const byB = a.store.conflicts({ currentDevice: b.deviceId }).map((c) => c.entity);
    expect([...byA, ...byB].sort()).toEqual(a.store.conflicts().map((c) => c.entity).sort());
    for (const entity of byB) expect(a.store.get(entity)?.deviceId).toBe(b.deviceId);

    const [first, second] = a.store.conflicts({ entityPrefix: 'memory/' });
    a.store.markReviewed(first!.id);
    expect(a.store.conflicts({ filter: 'open' }).map((c) => c.id)).not.toContain(first!.id);
    expect(a.store.conflicts({ filter: 'reviewed' }).map((c) => c.id)).toEqual([first!.id]);
    expect(a.store.conflicts().map((c) => c.id)).toContain(first!.id); // unsettled: still listed by default
    a.store.resolveConflicts([second!.id], 'current');
    expect(a.store.conflicts({ filter: 'settled' }).map((c) => c.id)).toEqual([second!.id]);
    expect(a.store.conflictCounts()).toEqual({ open: 3, reviewed: 1, settled: 1 });
    expect(a.store.conflicts({ filter: 'all' })).toHaveLength(5);
    // includeResolved is the older spelling of 'all' (the CLI's --all); without it, the default list.
    expect(a.store.conflicts({ includeResolved: true })).toEqual(a.store.conflicts({ filter: 'all' }));
    expect(a.store.conflicts({ includeResolved: false })).toEqual(a.store.conflicts({ filter: 'unsettled' }));
    expect(a.store.conflicts({ includeResolved: false })).toHaveLength(4);
  });

  it('keeps the current or the other value in bulk, one event per entity, all or none', () => {
    const { a, b } = conflicted(['memory/1', 'memory/2', 'memory/3']);
    const conflicts = a.store.conflicts();
    const before = a.store.eventCount();
    expect(() => a.store.resolveConflicts([conflicts[0]!.id, 9999], 'other')).toThrow(InvalidWriteError);
    expect(a.store.eventCount()).toBe(before); // nothing written
    expect(a.store.conflicts()).toHaveLength(3);

    const others = new Map(conflicts.map((c) => [c.entity, c.currentEventId === c.winner.eventId ? c.loser.value : c.winner.value]));
    const events = a.store.resolveConflicts(conflicts.map((c) => c.id), 'other');
    expect(events).toHaveLength(3);
    b.store.applyRemote(pushAll(a));
    for (const d of [a, b]) {
      expect(d.store.conflicts()).toEqual([]);
      for (const [entity, value] of others) expect(d.store.get(entity)?.value).toBe(value);
    }
  });

  it('"keep current" writes what the entity holds now, even when a third write superseded both sides', () => {
    const { a, b } = conflicted(['memory/1']);
    const c = device('c');
    c.store.applyRemote(a.store.sealedRun(a.deviceId, 0, 1000)); // c saw only a's side
    const third = c.store.put('memory/1', 'from c');
    const fromC = pushAll(c);
    a.store.applyRemote(fromC);
    const [first] = a.store.conflicts({ entityPrefix: 'memory/1', filter: 'all' }).filter((x) => x.loser.deviceId !== c.deviceId && x.winner.deviceId !== c.deviceId);
    expect(first!.currentEventId).toBe(third.event_id); // neither side is current now
    expect(first!.resolvedBy).toBeNull(); // c had not seen b's side: it does not settle the pair
    expect(a.store.keptValue(first!, 'current')).toEqual({ entity: 'memory/1', op: 'set', payload: 'from c' });
    a.store.resolveConflicts([first!.id], 'current');
    expect(a.store.get('memory/1')?.value).toBe('from c');
    expect(a.store.conflicts()).toEqual([]); // every pair of the entity settled by the new write
    b.store.applyRemote(fromC);
    b.store.applyRemote(pushAll(a));
    expect(b.store.conflicts()).toEqual([]);
    expect(b.store.stateDigest()).toBe(a.store.stateDigest());
  });
});
