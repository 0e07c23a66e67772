// The pull cursor and the events it covers move together (main/sync/engine.ts, receive): a page's events,
// what was rejected of it and the cursor past it are one transaction. A local failure anywhere in the
// page (an apply that throws halfway through, a cursor write that fails) leaves all of them as they were,
// and the page is applied whole when it comes again. The engine runs here against a scripted relay log
// (no relay process), so the failure can be put exactly where it is wanted.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toWire } from '../../main/sync/codec.ts';
import { SyncEngine } from '../../main/sync/engine.ts';
import type { EventSink, ReceivedEvent, Transport } from '../../main/sync/transport.ts';
import { PULL_CURSOR } from '../../main/store/relay-ledger.ts';
import type { EventStore } from '../../main/store/event-store.ts';
import type { FrontierResponse, PushResult } from '../../shared/portable/relay-api.ts';
import { newMotebit, openDevice, pushAll, tempDir, type TestDevice, type TestMotebit } from '../support/motebit.ts';

const EPOCH = `ep_${'e'.repeat(22)}`;

/** A relay log served one page at a time; the transport's cursor moves only once the sink took a page. */
class ScriptedTransport implements Transport {
  readonly kind = 'websocket' as const;
  readonly pushesInFlight = 1;
  readonly epoch = EPOCH;
  readonly #log: readonly ReceivedEvent[];
  readonly #pageSize: number;
  #sink: EventSink | undefined;
  #cursor = 0;
  constructor(log: readonly ReceivedEvent[], pageSize: number) {
    this.#log = log;
    this.#pageSize = pageSize;
  }
  async open(after: number, sink: EventSink): Promise<void> {
    this.#cursor = after;
    this.#sink = sink;
  }
  async push(): Promise<PushResult[]> {
    throw new Error('the reader has nothing to push');
  }
  async catchUp(): Promise<number> {
    for (;;) {
      const page = this.#log.filter((event) => event.seq > this.#cursor).slice(0, this.#pageSize);
      if (page.length === 0) return this.#cursor;
      await this.#sink!(page);
      this.#cursor = page.at(-1)!.seq;
    }
  }
  onDown(): void {}
  async close(): Promise<void> {}
}

let dir: ReturnType<typeof tempDir>;
let motebit: TestMotebit;
let stores: EventStore[];

beforeEach(() => {
  dir = tempDir('engine-cursor', { fast: true });
  motebit = newMotebit();
  stores = [];
});
afterEach(() => {
  for (const store of stores) store.close();
  dir.remove();
});

function device(name: string): TestDevice {
  const d = openDevice(motebit, dir.path, name);
  stores.push(d.store);
  return d;
}

/** Two writers, each with two sealed batches of 5; the log interleaves them so each page of 10 holds a batch of each. */
function twoWriterLog(): { log: ReceivedEvent[]; writers: [TestDevice, TestDevice] } {
  const a = device('a');
  const c = device('c');
  const batches: ReceivedEvent[][] = [];
  for (let round = 0; round < 2; round++) {
    const page: ReturnType<typeof pushAll> = [];
    for (const writer of [a, c]) {
      for (let i = 0; i < 5; i++) writer.store.put(`notes/${writer === a ? 'a' : 'c'}${round}-${i}`, { round, i });
      page.push(...pushAll(writer));
    }
    batches.push(page.map((event) => ({ ...toWire(event), seq: 0 })));
  }
  const log = batches.flat().map((event, index) => ({ ...event, seq: index + 1 }));
  return { log, writers: [a, c] };
}

function engineFor(reader: TestDevice, log: readonly ReceivedEvent[], writers: readonly TestDevice[]): SyncEngine {
  const transport = new ScriptedTransport(log, 10);
  const frontier = async (at?: number): Promise<FrontierResponse> => ({
    epoch: EPOCH,
    head: log.length,
    devices: writers.map((writer) => ({ device_id: writer.deviceId, seq: log.filter((event) => event.device_id === writer.deviceId).length })),
    at: at === undefined ? null : { seq: at, event_id: log[at - 1]?.event_id ?? null },
  });
  return new SyncEngine({
    store: reader.store,
    relay: { frontier, reenrol: () => Promise.reject(new Error('not needed')) },
    credentials: reader.credentials,
    connect: () => transport,
    transport: 'auto',
    intervalMs: 3_600_000,
  });
}

/** What a crash must never split: the events held, the pull cursor and the event it names. */
function position(store: EventStore): { events: number; cursor: number; cursorEvent: { seq: number; eventId: string } | null; heads: Record<string, number> } {
  return { events: store.eventCount(), cursor: store.getCursor(PULL_CURSOR), cursorEvent: store.ledger.cursorEvent(), heads: store.frontier().heads };
}

describe('the pull cursor commits with the page it covers', () => {
  it('an apply that throws halfway through a page leaves the events and the cursor as they were', async () => {
    const { log, writers } = twoWriterLog();
    const reader = device('reader');
    const engine = engineFor(reader, log, writers);
    const store = reader.store;
    const apply = store.applyRemote.bind(store);
    let calls = 0;
    // The third group is the first writer's second batch (page 2), the fourth the second writer's: the
    // disk fails after the first of page 2's two groups is applied.
    store.applyRemote = (input, options) => {
      calls++;
      if (calls === 4) throw new Error('disk I/O error (simulated)');
      return apply(input, options);
    };
    try {
      const failed = await engine.syncNow();
      expect(failed.ok).toBe(false);
      expect(failed.error?.kind).toBe('local');
      expect(calls).toBe(4);
      // Page 1 is in, with the cursor at its end; nothing of page 2, not even its first group.
      expect(position(store)).toEqual({
        events: 10,
        cursor: 10,
        cursorEvent: { seq: 10, eventId: log[9]!.event_id },
        heads: { [writers[0].deviceId]: 5, [writers[1].deviceId]: 5 },
      });
      expect(store.rejectedCount()).toBe(0);

      store.applyRemote = apply;
      const again = await engine.syncNow();
      expect(again.ok).toBe(true);
      expect(position(store)).toEqual({
        events: 20,
        cursor: 20,
        cursorEvent: { seq: 20, eventId: log[19]!.event_id },
        heads: { [writers[0].deviceId]: 10, [writers[1].deviceId]: 10 },
      });
    } finally {
      await engine.stop();
    }
  });

  it('a cursor write that fails takes the page it covers back with it', async () => {
    const { log, writers } = twoWriterLog();
    const reader = device('reader');
    const engine = engineFor(reader, log, writers);
    const store = reader.store;
    const setCursor = store.setCursor.bind(store);
    let failNext = false;
    store.setCursor = (name, value) => {
      if (name === PULL_CURSOR && value === 20 && failNext) {
        failNext = false;
        throw new Error('disk full (simulated)');
      }
      setCursor(name, value);
    };
    try {
      failNext = true;
      const failed = await engine.syncNow();
      expect(failed.ok).toBe(false);
      expect(position(store)).toEqual({
        events: 10,
        cursor: 10,
        cursorEvent: { seq: 10, eventId: log[9]!.event_id },
        heads: { [writers[0].deviceId]: 5, [writers[1].deviceId]: 5 },
      });
      expect((await engine.syncNow()).ok).toBe(true);
      expect(position(store)).toMatchObject({ events: 20, cursor: 20, cursorEvent: { seq: 20, eventId: log[19]!.event_id } });
    } finally {
      await engine.stop();
    }
  });

  it('a page with a bad event commits the good events, the rejection and the cursor together', async () => {
    const { log, writers } = twoWriterLog();
    // The second writer's second batch is tampered with: its last (sealed) event claims another payload.
    const tampered = log.map((event) => (event.seq === 20 ? { ...event, body: toWire({ ...JSON.parse(Buffer.from(event.body, 'base64url').toString('utf8')), payload: { forged: true } }).body } : event));
    const reader = device('reader');
    const engine = engineFor(reader, tampered, writers);
    try {
      const result = await engine.syncNow();
      expect(result.ok).toBe(false);
      expect(result.error?.kind).toBe('integrity');
      const store = reader.store;
      expect(position(store)).toEqual({
        events: 15,
        cursor: 20,
        cursorEvent: { seq: 20, eventId: log[19]!.event_id },
        heads: { [writers[0].deviceId]: 10, [writers[1].deviceId]: 5 },
      });
      expect(store.rejectedEvents().map((event) => event.relaySeq)).toEqual([16, 17, 18, 19, 20]);
      expect(store.ledger.repairs().map((repair) => repair.deviceId)).toEqual([writers[1].deviceId]);
    } finally {
      await engine.stop();
    }
  });
});
