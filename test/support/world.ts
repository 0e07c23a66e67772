// The delivery model of the property tests (named as such): an ordered list of pushed batches stands in for
// the relay's log, which keeps each device's events in push order. Devices pull any slice of it, again
// (duplicates), cut anywhere (unsealed tails) and shuffled within a batch. It is not the relay; the relay
// is tested for real in test/relay/.
// The reference at the end (expectedConflicts, foldedState) imports nothing from the code it checks: the
// order is written out again here, and "b was written after seeing a" is what the world recorded when b was
// written (the writer's held events then), not what b's vector clock claims.
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { expect } from 'vitest';
import type { SealedEvent } from '../../shared/portable/event.ts';
import { newMotebit, openDevice, type TestDevice } from './motebit.ts';

/** A deterministic permutation from a seed (fast-check shrinks the seed). */
/** The entities histories write: few, so concurrent writes to one entity are common. */
export const ENTITIES = ['memory/1', 'memory/2', 'memory/3'];

/** What a world's devices do: write, push a batch, pull a slice of the log (the delivery model's knobs). */
export type WorldAction =
  | { t: 'write'; d: number; entity: number; value: number | null }
  | { t: 'push'; d: number; limit: number }
  | { t: 'pull'; d: number; to: number; rewind: number; chunk: number; shuffle: number[]; dup: number };

/** The weighted arbitraries of the world's actions, for devices numbered by `d`; a property adds its own. */
export function worldActionArbs(d: fc.Arbitrary<number>): fc.WeightedArbitrary<WorldAction>[] {
  return [
    { weight: 4, arbitrary: fc.record({ t: fc.constant('write' as const), d, entity: fc.nat(ENTITIES.length - 1), value: fc.option(fc.integer({ min: 0, max: 9 }), { freq: 5 }) as fc.Arbitrary<number | null> }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('push' as const), d, limit: fc.integer({ min: 1, max: 6 }) }) },
    {
      weight: 3,
      arbitrary: fc.record({
        t: fc.constant('pull' as const),
        d,
        to: fc.double({ min: 0, max: 1, noNaN: true }),
        rewind: fc.nat(5),
        chunk: fc.integer({ min: 1, max: 8 }),
        shuffle: fc.array(fc.nat(), { maxLength: 8 }),
        dup: fc.nat(3),
      }),
    },
  ];
}

/** Applies one of the world's actions (`device` maps the action's number to a device of the world). */
export function runWorldAction(world: World, action: WorldAction, device: (d: number) => number = (d) => d): void {
  if (action.t === 'write') world.write(device(action.d), ENTITIES[action.entity]!, action.value);
  else if (action.t === 'push') world.push(device(action.d), action.limit);
  else world.pull(device(action.d), action.to, action.rewind, action.chunk, action.shuffle, action.dup);
}

export function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let state = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export class World {
  readonly motebit = newMotebit();
  readonly devices: TestDevice[];
  readonly log: SealedEvent[] = []; // the delivery model's ordered log
  /** Positions of the log a relay compacted away (snapshot tests): pulls skip them. */
  readonly compacted = new Set<number>();
  readonly cursors: number[];
  readonly written: SealedEvent[] = [];
  /** For each written event, the events its writer held when it wrote it: per device, the highest seq. */
  readonly heldWhenWritten = new Map<string, ReadonlyMap<string, number>>();

  constructor(dir: string, count: number, run: number) {
    this.devices = Array.from({ length: count }, (_, i) => openDevice(this.motebit, dir, `r${run}-d${i}`));
    this.cursors = this.devices.map(() => 0);
  }

  write(d: number, entity: string, value: number | null): void {
    const store = this.devices[d]!.store;
    const held = this.#applied(d);
    const event = value === null ? store.delete(entity) : store.put(entity, { v: value, by: d });
    this.written.push(event);
    this.heldWhenWritten.set(event.event_id, held);
  }

  readonly #readers = new Map<number, Database.Database>();

  /**
   * What device `d` has applied, read from its database file by this test's own query: per writer, the
   * highest seq of its chain head (a device applies each writer's events gap-free; after pruning or a join
   * from a snapshot it no longer holds every one of them, but its heads still say how far it has applied).
   */
  #applied(d: number): Map<string, number> {
    let reader = this.#readers.get(d);
    if (!reader) {
      reader = new Database(this.devices[d]!.path, { readonly: true });
      this.#readers.set(d, reader);
    }
    const rows = reader.prepare('SELECT device_id, seq FROM heads').all() as { device_id: string; seq: number }[];
    return new Map(rows.map((row) => [row.device_id, row.seq]));
  }

  push(d: number, limit: number): void {
    const device = this.devices[d]!;
    const batch = device.store.outboxBatch(limit, device.credentials);
    if (batch.length === 0) return;
    this.log.push(...batch);
    device.store.markPushed(batch.at(-1)!.device_seq);
  }

  pull(d: number, to: number, rewind: number, chunk: number, shuffle: number[], dup: number): void {
    const end = Math.max(this.cursors[d]!, Math.round(to * this.log.length));
    const start = Math.max(0, this.cursors[d]! - rewind); // re-delivering some: duplicates
    for (let i = start; i < end; i += chunk) {
      const part = this.log.slice(i, Math.min(end, i + chunk)).filter((_, k) => !this.compacted.has(i + k));
      if (part.length === 0) continue;
      for (let k = 0; k < dup && part.length > 0; k++) part.push(part[(shuffle[k] ?? k) % part.length]!);
      shuffle.forEach((r, k) => {
        const j = r % part.length;
        const from = k % part.length;
        [part[from], part[j]] = [part[j]!, part[from]!];
      });
      this.devices[d]!.store.applyRemote(part);
    }
    this.cursors[d] = end;
  }

  settle(): void {
    this.devices.forEach((_, d) => this.push(d, 1_000_000));
    this.devices.forEach((_, d) => this.pull(d, 1, 0, 50, [], 0));
  }

  close(): void {
    for (const reader of this.#readers.values()) reader.close();
    for (const device of this.devices) device.store.close();
  }
}

export function conflictKeys(device: TestDevice): string[] {
  return device.store
    .conflicts({ includeResolved: true })
    .map((c) => `${c.entity}|${c.loser.eventId}|${c.winner.eventId}|${c.resolvedBy}`)
    .sort();
}

/** The total order, written out again: Lamport time, then device id, then event id, in code-unit order. */
function referenceOrder(a: SealedEvent, b: SealedEvent): number {
  if (a.clock.l !== b.clock.l) return a.clock.l < b.clock.l ? -1 : 1;
  if (a.device_id !== b.device_id) return a.device_id < b.device_id ? -1 : 1;
  if (a.event_id !== b.event_id) return a.event_id < b.event_id ? -1 : 1;
  return 0;
}

/**
 * The reference: all pairs of concurrent writes to one entity, by brute force over the whole log, each with
 * the first event (in the total order) written after seeing both sides, which settles it. "b was written
 * after seeing a": b's writer held a when it wrote b (World.heldWhenWritten), or a is b's writer's earlier write.
 */
export function expectedConflicts(world: World): string[] {
  const events = world.written;
  const saw = (a: SealedEvent, b: SealedEvent): boolean => {
    if (a.event_id === b.event_id) return false;
    if (a.device_id === b.device_id) return a.device_seq < b.device_seq;
    return (world.heldWhenWritten.get(b.event_id)?.get(a.device_id) ?? 0) >= a.device_seq;
  };
  const pairs: string[] = [];
  const ordered = [...events].sort(referenceOrder);
  for (let i = 0; i < events.length; i++) {
    for (let j = i + 1; j < events.length; j++) {
      const [a, b] = [events[i]!, events[j]!];
      if (a.entity !== b.entity || a.device_id === b.device_id || saw(a, b) || saw(b, a)) continue;
      const [first, second] = referenceOrder(a, b) < 0 ? [a, b] : [b, a];
      const settledBy = ordered.find((c) => c.entity === a.entity && saw(a, c) && saw(b, c));
      pairs.push(`${a.entity}|${first.event_id}|${second.event_id}|${settledBy?.event_id ?? null}`);
    }
  }
  return pairs.sort();
}

/**
 * Every device of the world holds what the brute-force reference over every event ever written says:
 * nothing held back, the folded state, exactly the expected conflicts; and all agree on both digests.
 */
export function expectMatchesReference(world: World): void {
  const reference = { state: foldedState(world.written), conflicts: expectedConflicts(world) };
  const [first, ...rest] = world.devices;
  for (const device of world.devices) {
    expect(device.store.heldCount()).toBe(0);
    expect(new Map(device.store.state().map((s) => [s.entity, s.eventId]))).toEqual(reference.state);
    expect(conflictKeys(device)).toEqual(reference.conflicts);
  }
  for (const device of rest) {
    expect(device.store.stateDigest()).toBe(first!.store.stateDigest());
    expect(device.store.eventsDigest()).toBe(first!.store.eventsDigest());
  }
}

/** The reference state: per entity, the highest event of the log in the total order. */
export function foldedState(events: SealedEvent[]): Map<string, string> {
  const winners = new Map<string, SealedEvent>();
  for (const event of [...events].sort(referenceOrder)) winners.set(event.entity, event);
  return new Map([...winners].map(([entity, event]) => [entity, event.event_id]));
}
