// Helpers for the transport tests: real relays (test/relay/support.ts) over real SQLite in a temp dir,
// enrolled devices, realistic JSON bodies, and a sink that records what it was handed.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromBase64Url, toBase64Url } from '../../shared/encoding.ts';
import { newEventId } from '../../shared/ids.ts';
import type { WireEvent } from '../../shared/portable/wire.ts';
import type { RelayOptions, RunningRelay } from '../../relay/server.ts';
import type { EventSink, ReceivedEvent } from '../../main/sync/transport.ts';
import { RelayClient as TestRelayClient, enrolledMotebit, startTestRelay, tempDir, type TestDevice, type TestMotebit } from '../relay/support.ts';

export interface Harness {
  dir: string;
  relay: RunningRelay;
  client: TestRelayClient;
  motebit: TestMotebit;
  devices: TestDevice[];
  dbPath: string;
}

/** Creates and tears down relays for one test file; call in beforeEach/afterEach. */
export function harnesses(): { start(devices?: number, options?: Partial<RelayOptions>): Promise<Harness>; cleanup(): Promise<void>; defer(fn: () => Promise<unknown> | unknown): void } {
  const dirs: Array<ReturnType<typeof tempDir>> = [];
  const relays: RunningRelay[] = [];
  const deferred: Array<() => Promise<unknown> | unknown> = [];
  return {
    async start(count = 2, options = {}) {
      const dir = tempDir();
      dirs.push(dir);
      const dbPath = join(dir.dir, 'relay.db');
      const relay = await startTestRelay(dbPath, options);
      relays.push(relay);
      const client = new TestRelayClient(relay);
      const { motebit, devices } = await enrolledMotebit(client, count);
      return { dir: dir.dir, relay, client, motebit, devices, dbPath };
    },
    defer(fn) {
      deferred.push(fn);
    },
    async cleanup() {
      for (const fn of deferred.splice(0).reverse()) await fn();
      await Promise.all(relays.splice(0).map((relay) => relay.close()));
      for (const dir of dirs.splice(0)) dir.cleanup();
    },
  };
}

/** What a transport of `device` needs, against `relay` (or a proxy in front of it, same audience). */
export function deviceOptions(relay: Pick<RunningRelay, 'url' | 'audience'>, device: TestDevice, via?: string): { relayUrl: string; audience: string; motebitId: string; deviceId: string; deviceKey: TestDevice['key'] } {
  return { relayUrl: via ?? relay.url, audience: relay.audience, motebitId: device.motebit.motebitId, deviceId: device.deviceId, deviceKey: device.key };
}

/** `count` new plaintext events of `device` whose bodies are base64url JSON, as the engine would send. */
export function jsonEvents(device: TestDevice, count: number, payload: (index: number) => unknown = (index) => ({ note: `event ${index}` })): WireEvent[] {
  return Array.from({ length: count }, (_, index) => ({
    event_id: newEventId(),
    device_id: device.deviceId,
    device_seq: device.nextDeviceSeq++,
    key_id: null,
    body: toBase64Url(Buffer.from(JSON.stringify({ entity: 'notes/1', op: 'set', payload: payload(index) }), 'utf8')),
  }));
}

export const bodyJson = (body: string): unknown => JSON.parse(fromBase64Url(body).toString('utf8'));

/** A sink that records every page; optionally slow, and checks it is never called while busy. */
export class Collector {
  readonly events: ReceivedEvent[] = [];
  readonly pages: number[] = [];
  overlapped = false;
  #busy = false;
  #delayMs: number;
  /** Runs at the start of each call (before recording). */
  onPage: ((events: readonly ReceivedEvent[], call: number) => Promise<void> | void) | undefined;

  constructor(delayMs = 0) {
    this.#delayMs = delayMs;
  }

  readonly sink: EventSink = async (events) => {
    if (this.#busy) this.overlapped = true;
    this.#busy = true;
    try {
      await this.onPage?.(events, this.pages.length);
      if (this.#delayMs > 0) await sleep(this.#delayMs);
      this.pages.push(events.length);
      this.events.push(...events);
    } finally {
      this.#busy = false;
    }
  };

  seqs(): number[] {
    return this.events.map((event) => event.seq);
  }

  async waitFor(count: number): Promise<void> {
    await until(() => this.events.length >= count);
  }
}

/** Polls until `condition` holds; the test timeout is the only limit (no timing is asserted). */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(10);
}

/** 1..n (or from..to), the seqs a complete, duplicate-free delivery has. */
export const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_, index) => from + index);

/** Captures a rejection to assert on it. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}
