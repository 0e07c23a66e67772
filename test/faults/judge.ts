// THE FALSE-SUCCESS RULE: the one place that decides whether a `sync` that exited 0 told the truth.
//
// A sync exiting 0 says "this device and the relay are in step". So, read-only:
//   at the start   R0 = the event ids the relay's database holds,
//                  D0 = the ids of the events this device wrote itself that its store holds
//                       (every acknowledged write, and any write that committed without its ack);
//   at exit 0      (a) the device's store must hold every event in R0, and
//                  (b) the relay's database must hold every event in D0.
// Either missing: the exit 0 was a FALSE SUCCESS.
//
// Not judged (exempt): a sync during which the relay itself went away or changed under it (SIGKILL and
// restart, replacement, restore, a stop to copy its database), or during which a blackhole swallowed
// connections: what the relay held at the start is then not what the sync could see.
//
// Judged like any other, because exit 0 is right there only if the device repaired things (so (a) and
// (b) hold afterwards): a sync that received a tampered page, one from a device whose clock is beyond the
// relay's tolerance, one against a relay that was emptied or rolled back before the sync started.
import type { DeviceHome } from './devices.ts';
import type { ProcResult } from './procs.ts';
import type { RelayHost } from './relay-host.ts';
import { deviceEventIds, relayEventIds } from './store-reader.ts';

export interface Window {
  readonly kind: string;
  readonly from: number;
  to: number;
}

export interface SyncStart {
  readonly device: DeviceHome;
  readonly at: number;
  readonly skewSeconds: number;
  /** null when a database could not be read (the sync is then not judged, and that is noted). */
  readonly relayAtStart: Set<string> | null;
  readonly ownAtStart: Set<string> | null;
  readonly problem: string | null;
}

export type Verdict =
  | { readonly kind: 'failed' } // exit ≠ 0: nothing claimed
  | { readonly kind: 'true-success' }
  | { readonly kind: 'exempt'; readonly why: string }
  | { readonly kind: 'unjudged'; readonly why: string }
  | { readonly kind: 'false-success'; readonly why: string };

export class Judge {
  readonly #relay: RelayHost;
  /** Windows during which a sync is exempt (blackholes); relay disruptions come from the relay host. */
  readonly #exempting: Window[] = [];

  constructor(relay: RelayHost) {
    this.#relay = relay;
  }

  /** Marks a window during which syncs are exempt; returns the function that closes it. */
  openWindow(kind: string): () => void {
    const window: Window = { kind, from: Date.now(), to: Infinity };
    this.#exempting.push(window);
    return () => {
      window.to = Date.now();
    };
  }

  /** Call right before the sync process starts. */
  begin(device: DeviceHome): SyncStart {
    const at = Date.now();
    try {
      const relayAtStart = relayEventIds(this.#relay.databaseAt(at));
      const ownAtStart = device.deviceId ? deviceEventIds(device.dbPath, device.deviceId) : new Set<string>();
      return { device, at, skewSeconds: device.skewSeconds, relayAtStart, ownAtStart, problem: null };
    } catch (error) {
      return { device, at, skewSeconds: device.skewSeconds, relayAtStart: null, ownAtStart: null, problem: (error as Error).message };
    }
  }

  /** Call once the sync process has ended (before anything else is started on this device). */
  end(start: SyncStart, result: ProcResult): Verdict {
    if (result.code !== 0) return { kind: 'failed' };
    const from = start.at;
    const to = result.endedAt;
    const overlaps = (w: { from: number; to: number }): boolean => w.from <= to && w.to >= from;
    const disruption = this.#relay.disruptions.find(overlaps);
    if (disruption) return { kind: 'exempt', why: `the relay was ${disruption.kind === 'snapshot' ? 'stopped for a copy' : disruption.kind === 'restart' ? 'killed and restarted' : disruption.kind === 'replace' ? 'replaced' : 'restored'} during it` };
    const window = this.#exempting.find(overlaps);
    if (window) return { kind: 'exempt', why: `a ${window.kind} was active during it` };
    if (!start.relayAtStart || !start.ownAtStart) return { kind: 'unjudged', why: `could not read the databases at the start: ${start.problem}` };
    let deviceNow: Set<string>;
    let relayNow: Set<string>;
    try {
      deviceNow = deviceEventIds(start.device.dbPath);
      relayNow = relayEventIds(this.#relay.databaseAt(to));
    } catch (error) {
      return { kind: 'unjudged', why: `could not read the databases at the end: ${(error as Error).message}` };
    }
    const notOnDevice = [...start.relayAtStart].filter((id) => !deviceNow.has(id));
    const notOnRelay = [...start.ownAtStart].filter((id) => !relayNow.has(id));
    if (notOnDevice.length === 0 && notOnRelay.length === 0) return { kind: 'true-success' };
    const parts = [];
    if (notOnDevice.length > 0) parts.push(`${notOnDevice.length} of the ${start.relayAtStart.size} events the relay held at the start are not on the device (e.g. ${notOnDevice[0]})`);
    if (notOnRelay.length > 0) parts.push(`${notOnRelay.length} of the device's own ${start.ownAtStart.size} events are not on the relay (e.g. ${notOnRelay[0]})`);
    const skew = start.skewSeconds !== 0 ? ` [clock ${start.skewSeconds > 0 ? '+' : ''}${start.skewSeconds} s]` : '';
    return { kind: 'false-success', why: `${start.device.name}: sync exited 0 but ${parts.join('; ')}${skew}` };
  }
}
