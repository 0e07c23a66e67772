// The delivery model of the property tests (named as such): an ordered list of pushed batches stands in for
// the relay's log, which keeps each device's events in push order. Devices pull any slice of it, again
// (duplicates), cut anywhere (unsealed tails) and shuffled within a batch. It is not the relay; the relay
// is tested for real in test/relay/.
import { compareEvents, concurrent, happenedBefore } from '../../shared/clock.ts';
import type { SealedEvent } from '../../shared/event.ts';
import { newMotebit, openDevice, type TestDevice } from './motebit.ts';

/** A deterministic permutation from a seed (fast-check shrinks the seed). */
/** The entities histories write: few, so concurrent writes to one entity are common. */
export const ENTITIES = ['memory/1', 'memory/2', 'memory/3'];

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
  readonly cursors: number[];
  readonly written: SealedEvent[] = [];

  constructor(dir: string, count: number, run: number) {
    this.devices = Array.from({ length: count }, (_, i) => openDevice(this.motebit, dir, `r${run}-d${i}`));
    this.cursors = this.devices.map(() => 0);
  }

  write(d: number, entity: string, value: number | null): void {
    const store = this.devices[d]!.store;
    this.written.push(value === null ? store.delete(entity) : store.put(entity, { v: value, by: d }));
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
      const part = this.log.slice(i, Math.min(end, i + chunk));
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
    for (const device of this.devices) device.store.close();
  }
}

export function conflictKeys(device: TestDevice): string[] {
  return device.store
    .conflicts({ includeResolved: true })
    .map((c) => `${c.entity}|${c.loser.eventId}|${c.winner.eventId}|${c.resolvedBy}`)
    .sort();
}

/**
 * The reference: all pairs of concurrent writes to one entity, by brute force over the whole log, each with
 * the first event (in the total order) written after seeing both sides, which settles it.
 */
export function expectedConflicts(events: SealedEvent[]): string[] {
  const pairs: string[] = [];
  const ordered = [...events].sort(compareEvents);
  for (let i = 0; i < events.length; i++) {
    for (let j = i + 1; j < events.length; j++) {
      const [a, b] = [events[i]!, events[j]!];
      if (a.entity !== b.entity || !concurrent(a, b)) continue;
      const [first, second] = compareEvents(a, b) < 0 ? [a, b] : [b, a];
      const settledBy = ordered.find((c) => c.entity === a.entity && happenedBefore(a, c) && happenedBefore(b, c));
      pairs.push(`${a.entity}|${first.event_id}|${second.event_id}|${settledBy?.event_id ?? null}`);
    }
  }
  return pairs.sort();
}

/** The reference state: per entity, the highest event of the log in the total order. */
export function foldedState(events: SealedEvent[]): Map<string, string> {
  const winners = new Map<string, SealedEvent>();
  for (const event of [...events].sort(compareEvents)) winners.set(event.entity, event);
  return new Map([...winners].map(([entity, event]) => [entity, event.event_id]));
}

