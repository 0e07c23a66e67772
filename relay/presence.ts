// When each device was last seen and how far it has read the log, kept cheaply: every authenticated request
// and socket message notes a sighting in memory, and the sightings are written to the store at most once per
// interval per device, in one write per motebit (SQLite folds it into the next group commit). The device
// list reads the store and lays over what this instance has not written yet, so it is never staler here.
import type { Logger } from './log.ts';
import type { DeviceRecord, RelayStore, Sighting } from './store.ts';

export const SEEN_WRITE_MS = 5_000;

export class Presence {
  readonly #store: RelayStore;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #now: () => number;
  /** motebit -> device -> the latest sighting not written yet. */
  #pending = new Map<string, Map<string, Sighting>>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(store: RelayStore, log: Logger, intervalMs = SEEN_WRITE_MS, now: () => number = Date.now) {
    this.#store = store;
    this.#log = log;
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** Notes that a device was seen, and (when known) the highest seq it has been sent or holds. */
  seen(motebitId: string, deviceId: string, readSeq: number | null = null): void {
    let devices = this.#pending.get(motebitId);
    if (!devices) {
      devices = new Map();
      this.#pending.set(motebitId, devices);
    }
    const at = this.#now();
    const before = devices.get(deviceId);
    if (before) {
      // updated in place: this runs for every page a socket is sent
      before.at = Math.max(at, before.at);
      before.readSeq = maxSeq(before.readSeq, readSeq);
    } else {
      devices.set(deviceId, { deviceId, at, readSeq });
    }
    if (!this.#timer) {
      this.#timer = setTimeout(() => void this.flush(), this.#intervalMs);
      this.#timer.unref();
    }
  }

  /** The device records with this instance's unwritten sightings laid over them. */
  overlay(motebitId: string, devices: readonly DeviceRecord[]): DeviceRecord[] {
    const pending = this.#pending.get(motebitId);
    if (!pending) return [...devices];
    return devices.map((device) => {
      const sighting = pending.get(device.deviceId);
      if (!sighting) return device;
      return { ...device, lastSeenAt: Math.max(device.lastSeenAt ?? 0, sighting.at), readSeq: Math.max(device.readSeq, sighting.readSeq ?? 0) };
    });
  }

  /** Writes every pending sighting now (one write per motebit). */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#pending;
    this.#pending = new Map();
    this.#flushing = this.#flushing.then(async () => {
      for (const [motebitId, devices] of batch) {
        try {
          await this.#store.recordSeen(motebitId, [...devices.values()]);
        } catch (error) {
          // Last seen is a courtesy for the device list: a failed write is logged, never fails a request.
          this.#log.warn({ motebit_id: motebitId, err: error instanceof Error ? error.message : String(error) }, 'recording last seen failed');
        }
      }
    });
    return this.#flushing;
  }
}

function maxSeq(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}
