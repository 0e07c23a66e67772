// What the devices do in a run: per device, a list of operations (imports, puts, syncs) that together
// write about the run's event budget, with some writes to a few shared entities so that real conflicts
// occur. Every write carries a unique marker {"m": "r<seed>-<device>-<n>"} so the checks can tell writes
// apart. Fault kinds that act on a device add their own operations to these lists.
import type { Prng } from './prng.ts';

export interface Write {
  readonly entity: string;
  readonly value: { readonly m: string; readonly n: number; readonly p: string };
}

export type SkewStep = { readonly kind: 'put'; readonly write: Write } | { readonly kind: 'sync' };

export type Op =
  | { readonly kind: 'put'; readonly write: Write }
  | { readonly kind: 'import'; readonly writes: readonly Write[] }
  | { readonly kind: 'sync' }
  /** A sync SIGKILLed mid push, mid pull/apply (seen from its progress lines) or after a delay. */
  | { readonly kind: 'kill-sync'; readonly trigger: 'push' | 'pull' | 'timer'; readonly delayMs: number }
  /** A big import SIGKILLed after a delay (before, during or after its transaction). */
  | { readonly kind: 'kill-import'; readonly writes: readonly Write[]; readonly delayMs: number }
  /** A sync, then the same sync again at once (a device re-sending). */
  | { readonly kind: 'sync-twice' }
  /** A sync and another command on the same home at the same time. */
  | { readonly kind: 'concurrent'; readonly other: 'put' | 'import' | 'sync'; readonly writes: readonly Write[] }
  /** Steps run with the device's clock off by `seconds`, then an honest sync. */
  | { readonly kind: 'skew'; readonly seconds: number; readonly beyond: boolean; readonly steps: readonly SkewStep[] };

export const SHARED_ENTITIES = 5;
const OWN_ENTITIES = 40;

/** Makes a device's writes, each with the next marker. */
export class Writer {
  readonly device: string;
  readonly #tag: string;
  readonly #prng: Prng;
  #n = 0;

  constructor(runTag: string, device: string, prng: Prng) {
    this.device = device;
    this.#tag = runTag;
    this.#prng = prng;
  }

  next(): Write {
    const n = ++this.#n;
    const entity = this.#prng.chance(0.15) ? `shared/${this.#prng.int(0, SHARED_ENTITIES - 1)}` : `${this.device}/${this.#prng.int(0, OWN_ENTITIES - 1)}`;
    return { entity, value: { m: `${this.#tag}-${this.device}-${n}`, n, p: this.#prng.word(this.#prng.int(8, 64)) } };
  }

  many(count: number): Write[] {
    return Array.from({ length: count }, () => this.next());
  }
}

/** A device's ordinary operations, writing about `budget` events, ending with a sync. */
export function planDevice(prng: Prng, writer: Writer, budget: number, maxImport: number): Op[] {
  const ops: Op[] = [];
  let left = budget;
  let sinceSync = 0;
  while (left > 0) {
    const roll = prng.next();
    if (sinceSync >= 3 || roll < 0.25) {
      ops.push({ kind: 'sync' });
      sinceSync = 0;
      continue;
    }
    if (roll < 0.75) {
      const count = Math.min(left, prng.int(Math.min(5, maxImport), maxImport));
      ops.push({ kind: 'import', writes: writer.many(count) });
      left -= count;
    } else {
      ops.push({ kind: 'put', write: writer.next() });
      left -= 1;
    }
    sinceSync++;
  }
  ops.push({ kind: 'sync' });
  return ops;
}

/** Puts an operation at a random place of a plan (never first: the device has something to do before). */
export function insertOp(prng: Prng, ops: Op[], op: Op): void {
  ops.splice(prng.int(1, Math.max(1, ops.length - 1)), 0, op);
}
