// The WebSocket transport's shell (main/sync/ws-transport.ts), rule by rule: constructor and argument
// checks, the upgrade and its failures, heartbeat, message parsing, acks, close(), reconnect backoff and the
// timers a transport must not leave behind. What each event does in each state is ws-state.test.ts's; here
// the shell is driven through real sockets on 127.0.0.1: the real relay where the behaviour is normal
// operation, a scripted relay (test/support/scripted-ws-relay.ts) for what the real relay never does.
import { createHook } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RelayClient } from '../../main/sync/relay-client.ts';
import { TransportError } from '../../main/sync/transport.ts';
import { WsTransport, type WsTransportOptions } from '../../main/sync/ws-transport.ts';
import { MAX_BATCH_EVENTS } from '../../shared/portable/relay-api.ts';
import type { StoredWireEvent } from '../../shared/portable/wire.ts';
import { startCuttableProxy } from '../support/cuttable-proxy.ts';
import { startNoUpgradeProxy } from '../support/no-upgrade-proxy.ts';
import { freePort } from '../support/ports.ts';
import { SCRIPTED_EPOCH, ackFor, closeFrame, frame, jsonFrame, readyMessage, startScriptedRelay, type ScriptedRelay, type ScriptedRelayOptions, type ScriptedSocket } from '../support/scripted-ws-relay.ts';
import { TestMotebit, type TestDevice } from '../relay/support.ts';
import { Collector, deviceOptions, harnesses, jsonEvents, range, rejection, until } from './support.ts';

const h = harnesses();
afterEach(async () => {
  vi.restoreAllMocks();
  await h.cleanup();
});

/** Fast reconnects for tests; everything else at its default unless a test says otherwise. */
const FAST: Partial<WsTransportOptions> = { backoff: { initialMs: 20, maxMs: 200 } };

function ws(options: WsTransportOptions): WsTransport {
  const transport = new WsTransport({ ...FAST, ...options });
  h.defer(() => transport.close());
  return transport;
}

async function scriptedRelay(options: ScriptedRelayOptions): Promise<ScriptedRelay> {
  const relay = await startScriptedRelay(options);
  h.defer(() => relay.close());
  return relay;
}

/** What a transport of `device` needs against a scripted relay (which checks no token). */
function scriptedOptions(relay: ScriptedRelay, device: TestDevice): WsTransportOptions {
  return { relayUrl: relay.url, motebitId: device.motebit.motebitId, deviceId: device.deviceId, deviceKey: device.key };
}

/** The script of a relay that behaves: once the device authenticates, 'ready' and then 'caught_up' at its cursor. */
function behaves(device: TestDevice): (socket: ScriptedSocket) => void {
  return (socket) => {
    void socket.next('auth').then((auth) => {
      socket.send(readyMessage(device.deviceId));
      socket.send({ type: 'caught_up', seq: auth.after });
    });
  };
}

/** `device`'s events as a relay stores them, at `seqs`. */
function stored(device: TestDevice, seqs: number[]): StoredWireEvent[] {
  return jsonEvents(device, seqs.length).map((event, index) => ({ ...event, seq: seqs[index]! }));
}

/**
 * Waits for `condition`, failing after `limitMs`: for an outcome a regression would make never happen, so
 * the test fails at once instead of at the suite's timeout. No timing is asserted by it.
 */
async function within(limitMs: number, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`the condition did not hold within ${limitMs} ms`);
    await sleep(10);
  }
}

/** Whether `promise` settles (either way) within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const, () => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Counts the timers (setTimeout, setInterval) that main/sync/ws-transport.ts creates and that are still
 * alive (neither fired nor cleared), through async_hooks: other timers of the process (the relay's, the
 * test runner's) do not count. Stopped after each test.
 */
function transportTimers(): () => number {
  const alive = new Set<number>();
  const hook = createHook({
    init(id, type) {
      if (type === 'Timeout' && (new Error().stack ?? '').includes('main/sync/ws-transport.ts')) alive.add(id);
    },
    destroy(id) {
      alive.delete(id);
    },
  }).enable();
  h.defer(() => hook.disable());
  return () => alive.size;
}

describe('WsTransport: constructor and arguments', () => {
  it('takes an http(s) origin and talks ws(s) to the same host, at the motebit’s socket path', () => {
    const device = new TestMotebit().device();
    const base = { motebitId: device.motebit.motebitId, deviceId: device.deviceId, deviceKey: device.key };
    const secure = new WsTransport({ ...base, relayUrl: 'https://relay.example' });
    expect(secure.url).toBe(`wss://relay.example/v1/motebits/${device.motebit.motebitId}/ws`);
    expect(secure.audience).toBe('https://relay.example');
    const plain = new WsTransport({ ...base, relayUrl: 'http://localhost:8787/' });
    expect(plain.url).toBe(`ws://localhost:8787/v1/motebits/${device.motebit.motebitId}/ws`);
    expect(plain.audience).toBe('http://127.0.0.1:8787');
    expect(plain.kind).toBe('websocket');
  });

  it('refuses a relay URL that is not an http(s) origin', () => {
    const device = new TestMotebit().device();
    const make = (relayUrl: string) => () => new WsTransport({ relayUrl, motebitId: device.motebit.motebitId, deviceId: device.deviceId, deviceKey: device.key });
    for (const url of ['ws://relay.example', 'wss://relay.example', 'ftp://relay.example']) {
      expect(make(url)).toThrow(new TypeError('the relay URL is http: or https:'));
    }
    for (const url of ['https://relay.example/relay', 'https://relay.example/?x=1', 'https://relay.example/#top', 'http://relay.example/v1/']) {
      expect(make(url)).toThrow(new TypeError('the relay URL is an origin, without a path'));
    }
  });

  it('a push of nothing resolves with no results at once, even before open; a push of too many is a RangeError', async () => {
    const device = new TestMotebit().device();
    const transport = ws({ relayUrl: 'http://127.0.0.1:9', motebitId: device.motebit.motebitId, deviceId: device.deviceId, deviceKey: device.key });
    await expect(transport.push([])).resolves.toEqual([]);
    await expect(transport.push(jsonEvents(device, MAX_BATCH_EVENTS + 1))).rejects.toThrow(new RangeError(`a push carries at most ${MAX_BATCH_EVENTS} events`));
    await expect(transport.push(jsonEvents(device, 1))).rejects.toThrow(new Error('open the transport first'));
    expect(transport.backlog).toBe(0);
    expect(transport.connected).toBe(false);
    expect(transport.connectAttempts).toBe(0);
  });

  it('open refuses a negative cursor, a second open and a closed transport, each in its own words', async () => {
    const { relay, devices } = await h.start(1);
    const transport = ws(deviceOptions(relay, devices[0]!));
    await expect(transport.open(-1, async () => undefined)).rejects.toThrow(new RangeError('after is a sequence number'));
    expect(transport.connectAttempts).toBe(0);
    await transport.open(0, async () => undefined);
    await expect(transport.open(0, async () => undefined)).rejects.toThrow(new Error('the transport is already open'));
    expect(transport.connectAttempts).toBe(1);
    expect(transport.connected).toBe(true);
    await transport.close();
    expect(transport.connected).toBe(false);
    const closed = await rejection(transport.open(0, async () => undefined));
    expect(closed).toBeInstanceOf(TransportError);
    expect(closed).toMatchObject({ kind: 'network', message: 'the transport is closed' });
  });

  it('caps the token lifetime at the protocol’s maximum instead of sending a token the relay refuses', async () => {
    const { relay, devices } = await h.start(1);
    const a = devices[0]!;
    const transport = ws({ ...deviceOptions(relay, a), tokenLifetimeSeconds: 3600 });
    await transport.open(0, async () => undefined);
    expect(transport.connected).toBe(true);
    expect((await transport.push(jsonEvents(a, 1)))[0]).toMatchObject({ status: 'stored', seq: 1 });
  });
});

describe('WsTransport: the upgrade', () => {
  it('names the HTTP status of a refused upgrade: 403 from a proxy is refused, 503 is a network failure', async () => {
    const { relay, devices } = await h.start(1);
    for (const [status, kind] of [
      [403, 'refused'],
      [503, 'network'],
    ] as const) {
      const proxy = await startNoUpgradeProxy(relay.url, { status });
      h.defer(() => proxy.close());
      const error = await rejection(ws({ ...deviceOptions(relay, devices[0]!, proxy.url), connectTimeoutMs: 3000 }).open(0, async () => undefined));
      expect(error).toBeInstanceOf(TransportError);
      expect(error).toMatchObject({ kind, message: `the WebSocket upgrade was refused: HTTP ${status}` });
      expect(proxy.upgradesRefused).toBe(1);
    }
  });

  it('says why a socket could not be opened when nothing listens', async () => {
    const device = new TestMotebit().device();
    const port = await freePort();
    const error = await rejection(ws({ relayUrl: `http://127.0.0.1:${port}`, motebitId: device.motebit.motebitId, deviceId: device.deviceId, deviceKey: device.key }).open(0, async () => undefined));
    expect(error).toBeInstanceOf(TransportError);
    expect((error as TransportError).kind).toBe('network');
    expect((error as TransportError).message).toBe(`cannot open a WebSocket to the relay: connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  it('does not follow a redirect, even to a relay that would accept it', async () => {
    const { relay, devices } = await h.start(1);
    const a = devices[0]!;
    const target = `${relay.url.replace('http:', 'ws:')}/v1/motebits/${a.motebit.motebitId}/ws`;
    const redirecting = await scriptedRelay({ upgrade: () => ({ status: 302, headers: { location: target } }), onSocket: () => undefined });
    const error = await rejection(ws({ ...deviceOptions(relay, a, redirecting.url), connectTimeoutMs: 3000 }).open(0, async () => undefined));
    expect(error).toMatchObject({ kind: 'refused', message: 'the WebSocket upgrade was refused: HTTP 302' });
    expect(relay.stats().connections).toEqual([]);
  });

  it('asks for no compression', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({ onSocket: behaves(device) });
    const transport = ws(scriptedOptions(relay, device));
    await transport.open(0, async () => undefined);
    expect(await transport.catchUp()).toBe(0);
    expect(relay.sockets[0]?.headers['sec-websocket-extensions']).toBeUndefined();
  });

  it('gives up on a relay that upgrades but never says ready, and drops its socket', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({ onSocket: () => undefined });
    const error = await rejection(ws({ ...scriptedOptions(relay, device), connectTimeoutMs: 200 }).open(0, async () => undefined));
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ kind: 'network', message: 'the relay did not accept the socket within 200 ms' });
    expect(relay.sockets[0]?.received).toEqual([expect.objectContaining({ type: 'auth', after: 0 })]);
    await within(2000, () => relay.sockets[0]?.closed !== undefined);
    expect(relay.sockets[0]?.closed?.code).toBe(1006);
  });
});

describe('WsTransport: heartbeat', () => {
  it('keeps a quiet socket up: answered pings count as life, and the connect timer stops at ready', async () => {
    const { relay, devices } = await h.start(1);
    const down: TransportError[] = [];
    const transport = ws({ ...deviceOptions(relay, devices[0]!), pingIntervalMs: 100, idleTimeoutMs: 1500, connectTimeoutMs: 1500 });
    transport.onDown((error) => down.push(error));
    await transport.open(0, async () => undefined);
    // Well past the connect timeout and the idle timeout, with nothing to say either way but pings.
    await sleep(3000);
    expect(down).toEqual([]);
    expect(transport.connected).toBe(true);
    expect(transport.connectAttempts).toBe(1);
  });

  it("counts the relay's own pings as life, from a relay that does not answer the device's", async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({ onSocket: behaves(device), autoPong: false, pingEveryMs: 100 });
    const down: TransportError[] = [];
    const transport = ws({ ...scriptedOptions(relay, device), pingIntervalMs: 100, idleTimeoutMs: 1500 });
    transport.onDown((error) => down.push(error));
    await transport.open(0, async () => undefined);
    await sleep(3000);
    expect(down).toEqual([]);
    expect(transport.connected).toBe(true);
    expect(transport.connectAttempts).toBe(1);
  });
});

describe('WsTransport: what the relay sends', () => {
  const invalid = 'the relay sent an invalid message: ';
  it.each([
    ['a binary frame (even of valid JSON)', frame(Buffer.from(JSON.stringify({ type: 'caught_up', seq: 0 }))), 'the relay sent a binary message'],
    ['text that is not JSON', frame('caught_up, seq 0'), 'the relay sent a message that is not JSON'],
    ['JSON null', jsonFrame(null), `${invalid}Invalid input: expected object, received null`],
    ['a JSON number', jsonFrame(42), `${invalid}Invalid input: expected object, received number`],
    ['a type that is not a string', jsonFrame({ type: 5 }), `${invalid}Invalid discriminator value. Expected 'limits' | 'ready' | 'reauthed' | 'events' | 'caught_up' | 'ack' | 'error'`],
    ['a message without a type', jsonFrame({ seq: 1 }), `${invalid}Invalid discriminator value. Expected 'limits' | 'ready' | 'reauthed' | 'events' | 'caught_up' | 'ack' | 'error'`],
    ['a known type with a bad field', jsonFrame({ type: 'caught_up', seq: -1 }), `${invalid}Too small: expected number to be >=0`],
  ])('%s ends the socket with a protocol error, and the socket is dropped', async (_what, bad, message) => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        if (socket.index > 0) return behaves(device)(socket);
        void socket.next('auth').then(() => {
          socket.send(readyMessage(device.deviceId));
          socket.sendTogether(bad);
        });
      },
    });
    const down: TransportError[] = [];
    const transport = ws(scriptedOptions(relay, device));
    transport.onDown((error) => down.push(error));
    await transport.open(0, async () => undefined);
    await within(3000, () => down.length === 1);
    expect(down[0]).toBeInstanceOf(TransportError);
    expect(down[0]).toMatchObject({ kind: 'protocol', message });
    // The device dropped the socket itself (no close handshake).
    await within(3000, () => relay.sockets[0]?.closed !== undefined);
    expect(relay.sockets[0]?.closed?.code).toBe(1006);
    // Not final: the next socket is fine.
    await within(3000, () => transport.connected);
    expect(await transport.catchUp()).toBe(0);
  });

  it('ignores message types it does not know (a later revision may add some)', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        void socket.next('auth').then(() => {
          socket.send(readyMessage(device.deviceId));
          socket.send({ type: 'announcement', text: 'hello' });
          socket.send({ type: 'caught_up', seq: 0 });
        });
      },
    });
    const down: TransportError[] = [];
    const transport = ws(scriptedOptions(relay, device));
    transport.onDown((error) => down.push(error));
    await transport.open(0, async () => undefined);
    expect(await transport.catchUp()).toBe(0);
    expect(down).toEqual([]);
    expect(transport.connected).toBe(true);
    expect(transport.connectAttempts).toBe(1);
  });

  it('hands no empty page to the sink', async () => {
    const device = new TestMotebit().device();
    const events = stored(device, [4]);
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        void socket.next('auth').then(() => {
          socket.send(readyMessage(device.deviceId, { head: 4 }));
          socket.send({ type: 'events', events: [] });
          socket.send({ type: 'events', events });
          socket.send({ type: 'events', events: [] });
          socket.send({ type: 'caught_up', seq: 4 });
        });
      },
    });
    const got = new Collector();
    const transport = ws(scriptedOptions(relay, device));
    await transport.open(3, got.sink);
    expect(await transport.catchUp()).toBe(4);
    expect(got.pages).toEqual([1]);
    expect(got.seqs()).toEqual([4]);
  });

  it('refuses events at or before its cursor with the relay’s own error, not as a sink failure', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        void socket.next('auth').then(() => socket.send(readyMessage(device.deviceId, { head: 6 })));
      },
    });
    const got = new Collector();
    const down: TransportError[] = [];
    const transport = ws({ ...scriptedOptions(relay, device), backoff: { initialMs: 60_000, maxMs: 60_000 } });
    transport.onDown((error) => down.push(error));
    await transport.open(5, got.sink);
    const caught = rejection(transport.catchUp());
    relay.sockets[0]!.send({ type: 'events', events: stored(device, [3, 6]) });
    await within(3000, () => down.length === 1);
    expect(down[0]).toBeInstanceOf(TransportError);
    expect(down[0]).toMatchObject({ kind: 'protocol', message: 'the relay sent seq 3 after 5' });
    expect(await caught).toBe(down[0]);
    expect(got.events).toEqual([]);
    expect(transport.cursor).toBe(5);
  });

  it('counts pages received and not yet handed to the sink as its backlog', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        void socket.next('auth').then(() => {
          // All in one chunk: the socket is paused only once the first page is in the sink.
          socket.sendTogether(jsonFrame(readyMessage(device.deviceId, { head: 3 })), ...[1, 2, 3].map((seq) => jsonFrame({ type: 'events', events: stored(device, [seq]) })));
        });
      },
    });
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const got = new Collector();
    got.onPage = (_events, call) => (call === 0 ? held : undefined);
    const transport = ws(scriptedOptions(relay, device));
    expect(transport.backlog).toBe(0);
    await transport.open(0, got.sink);
    expect(transport.backlog).toBe(2);
    release();
    relay.sockets[0]!.send({ type: 'caught_up', seq: 3 });
    expect(await transport.catchUp()).toBe(3);
    expect(transport.backlog).toBe(0);
    expect(got.seqs()).toEqual([1, 2, 3]);
  });

  it('catchUp after catching up waits for a live page still in the sink, and answers the cursor after it', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({ onSocket: behaves(device) });
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let inSink = false;
    const got = new Collector();
    got.onPage = () => {
      inSink = true;
      return held;
    };
    const transport = ws(scriptedOptions(relay, device));
    await transport.open(0, got.sink);
    expect(await transport.catchUp()).toBe(0);
    relay.sockets[0]!.send({ type: 'events', events: stored(device, [1]) }); // live: the queue is empty again once it is in the sink
    await within(3000, () => inSink);
    let answered: number | undefined;
    const caught = transport.catchUp().then((cursor) => (answered = cursor));
    await sleep(50);
    expect(answered).toBeUndefined(); // the page is still in the sink
    release();
    expect(await caught).toBe(1);
  });
});

describe("WsTransport: 'ready' and the socket that fails with it", () => {
  it('open adopts a socket that said ready and failed in the same breath: it is reported down and replaced', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        if (socket.index > 0) return behaves(device)(socket);
        void socket.next('auth').then(() => socket.sendTogether(jsonFrame(readyMessage(device.deviceId)), frame(Buffer.from('?'))));
      },
    });
    const down: TransportError[] = [];
    let ups = 0;
    const transport = ws(scriptedOptions(relay, device));
    transport.onDown((error) => down.push(error));
    transport.onUp(() => ups++);
    await transport.open(0, async () => undefined);
    await within(3000, () => down.length === 1);
    expect(down[0]).toMatchObject({ kind: 'protocol', message: 'the relay sent a binary message' });
    await within(3000, () => transport.connected);
    expect(ups).toBe(1);
    expect(relay.sockets).toHaveLength(2);
  });

  it('a reconnect whose socket fails as it says ready is not reported up', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        if (socket.index !== 1) return behaves(device)(socket);
        void socket.next('auth').then(() => socket.sendTogether(jsonFrame(readyMessage(device.deviceId)), frame(Buffer.from('?'))));
      },
    });
    const down: TransportError[] = [];
    let ups = 0;
    const transport = ws(scriptedOptions(relay, device));
    transport.onDown((error) => down.push(error));
    transport.onUp(() => ups++);
    await transport.open(0, async () => undefined);
    expect(await transport.catchUp()).toBe(0);
    relay.sockets[0]!.close(4000, 'bye');
    await within(3000, () => relay.sockets.length === 3 && transport.connected);
    expect(await transport.catchUp()).toBe(0);
    expect(down.map((error) => error.message)).toEqual(['the socket closed (4000 bye)', 'the relay sent a binary message']);
    expect(ups).toBe(1);
  });
});

describe('WsTransport: re-auth', () => {
  it('a renewed expiry replaces the re-auth that was due for the old one', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        void socket.next('auth').then(() => {
          // A token about to expire: its re-auth would be due within 1.5 s...
          socket.send(readyMessage(device.deviceId, { expiresInSeconds: 2 }));
          socket.send({ type: 'caught_up', seq: 0 });
          // ...but the relay says it now lasts 300 s.
          socket.send({ type: 'reauthed', exp: Math.floor(Date.now() / 1000) + 300 });
        });
      },
    });
    const down: TransportError[] = [];
    const transport = ws(scriptedOptions(relay, device));
    transport.onDown((error) => down.push(error));
    await transport.open(0, async () => undefined);
    expect(await transport.catchUp()).toBe(0);
    await sleep(2000);
    expect(relay.sockets[0]?.received.map((message) => message.type)).toEqual(['auth']);
    expect(down).toEqual([]);
  });

  it('re-authenticates in-band when the token is due, and again when the renewed one is', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        void socket.next('auth').then(() => {
          socket.send(readyMessage(device.deviceId, { expiresInSeconds: 2 }));
          socket.send({ type: 'caught_up', seq: 0 });
        });
        void socket.next('reauth').then(() => socket.send({ type: 'reauthed', exp: Math.floor(Date.now() / 1000) + 2 }));
      },
    });
    const transport = ws(scriptedOptions(relay, device));
    await transport.open(0, async () => undefined);
    await within(5000, () => relay.sockets[0]!.received.filter((message) => message.type === 'reauth').length === 2);
    expect(transport.connected).toBe(true);
    expect(transport.connectAttempts).toBe(1);
  });
});

describe('WsTransport: pushes', () => {
  it('a push the relay never answers fails after pushTimeoutMs; a late ack or an error for no waiting push is ignored', async () => {
    const device = new TestMotebit().device();
    let socket0!: ScriptedSocket;
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        socket0 = socket;
        behaves(device)(socket);
      },
    });
    const down: TransportError[] = [];
    const transport = ws({ ...scriptedOptions(relay, device), pushTimeoutMs: 150 });
    transport.onDown((error) => down.push(error));
    await transport.open(0, async () => undefined);
    const lost = await rejection(transport.push(jsonEvents(device, 1)));
    expect(lost).toBeInstanceOf(TransportError);
    expect(lost).toMatchObject({ kind: 'network', message: 'the relay did not acknowledge the push within 150 ms' });
    // Late: the ack of the push that timed out, and a refusal of a push nobody sent.
    const late = await socket0.next('push');
    socket0.send(ackFor(late));
    socket0.send({ type: 'error', id: 'p99', code: 'rate_limited', message: 'slow down' });
    // The socket is still fine.
    const events = jsonEvents(device, 2);
    const answered = transport.push(events);
    socket0.send(ackFor(await socket0.next('push'), { firstSeq: 2 }));
    expect(await answered).toEqual(events.map((event, index) => ({ event_id: event.event_id, status: 'stored', seq: 2 + index })));
    expect(down).toEqual([]);
    expect(transport.connected).toBe(true);
  });

  it('an ack must answer the push it names: other results, or another epoch, reject the push', async () => {
    const device = new TestMotebit().device();
    let socket0!: ScriptedSocket;
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        socket0 = socket;
        behaves(device)(socket);
      },
    });
    const down: TransportError[] = [];
    const transport = ws(scriptedOptions(relay, device));
    transport.onDown((error) => down.push(error));
    await transport.open(0, async () => undefined);

    const short = transport.push(jsonEvents(device, 2));
    const first = await socket0.next('push');
    socket0.send({ ...ackFor(first), results: [] });
    const error = await rejection(short);
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ kind: 'protocol', message: 'the relay answered 0 results for 2 events, or not in order' });

    const elsewhere = transport.push(jsonEvents(device, 1));
    socket0.send(ackFor(await socket0.next('push'), { epoch: 'ep_anotheranotheranothera' }));
    expect(await rejection(elsewhere)).toMatchObject({ kind: 'protocol', code: 'epoch_changed' });
    expect(transport.epoch).toBe(SCRIPTED_EPOCH);

    // A right answer (twice: the second is ignored).
    const events = jsonEvents(device, 1);
    const fine = transport.push(events);
    const third = await socket0.next('push');
    socket0.send(ackFor(third, { firstSeq: 7 }));
    socket0.send(ackFor(third, { firstSeq: 8 }));
    expect(await fine).toEqual([{ event_id: events[0]!.event_id, status: 'stored', seq: 7 }]);
    expect(await transport.catchUp()).toBe(0);
    expect(down).toEqual([]);
  });

  it('a push waiting when the socket closes is rejected with the close’s kind, code and words', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        behaves(device)(socket);
        // The first socket's token expires before it is renewed; the second's device is revoked.
        void socket.next('push').then(() => (socket.index === 0 ? socket.close(4419, 'token_expired') : socket.close(4403, 'revoked')));
      },
    });
    const down: TransportError[] = [];
    const transport = ws(scriptedOptions(relay, device));
    transport.onDown((error) => down.push(error));
    await transport.open(0, async () => undefined);

    const expired = await rejection(transport.push(jsonEvents(device, 1)));
    expect(expired).toBeInstanceOf(TransportError);
    expect(expired).toMatchObject({ kind: 'network', code: 'token_expired', message: 'the socket closed before the push was acknowledged: the socket token expired before it was renewed' });
    await within(3000, () => down.length === 1);
    expect((expired as TransportError).cause).toBe(down[0]);

    await within(3000, () => transport.connected);
    const revoked = await rejection(transport.push(jsonEvents(device, 1)));
    expect(revoked).toMatchObject({ kind: 'auth', code: 'revoked_device', message: 'the socket closed before the push was acknowledged: this device has been revoked' });
    await within(3000, () => down.length === 2);
    expect((revoked as TransportError).cause).toBe(down[1]);
  });

  it('a push made while the relay is closing the socket fails at once: it could not be sent', async () => {
    const device = new TestMotebit().device();
    let socket0!: ScriptedSocket;
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        socket0 = socket;
        behaves(device)(socket);
      },
    });
    const timers = transportTimers();
    const transport = ws({ ...scriptedOptions(relay, device), backoff: { initialMs: 60_000, maxMs: 60_000 } });
    const down: TransportError[] = [];
    transport.onDown((error) => down.push(error));
    let pushed: Promise<unknown> | undefined;
    // The sink pushes as it handles the page the relay sent just before its close frame (same chunk).
    const sink = async (): Promise<void> => {
      await Promise.resolve();
      pushed = rejection(transport.push(jsonEvents(device, 1)));
    };
    await transport.open(0, sink);
    expect(await transport.catchUp()).toBe(0);
    socket0.sendTogether(jsonFrame({ type: 'events', events: stored(device, [1]) }), closeFrame(4000, 'bye'));
    await within(3000, () => pushed !== undefined && down.length === 1);
    const error = await pushed;
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ kind: 'network', message: 'the push could not be sent' });
    expect(((error as TransportError).cause as Error).message).toBe('the socket is not open');
    expect(down[0]?.message).toBe('the socket closed (4000 bye)');
    expect(socket0.received.filter((message) => message.type === 'push')).toEqual([]);
    // The push's own timer went with it, and nothing else is left once closed.
    await transport.close();
    await within(1900, () => timers() === 0);
  });
});

describe('WsTransport: catchUp and the sink', () => {
  it('a drop while catchUp waits rejects it with the drop’s error', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        void socket.next('auth').then(() => socket.send(readyMessage(device.deviceId))); // never caught up
      },
    });
    const down: TransportError[] = [];
    const transport = ws({ ...scriptedOptions(relay, device), backoff: { initialMs: 60_000, maxMs: 60_000 } });
    transport.onDown((error) => down.push(error));
    await transport.open(0, async () => undefined);
    const caught = rejection(transport.catchUp());
    relay.sockets[0]!.close(4000, 'bye');
    const error = await caught;
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ kind: 'network', message: 'the socket closed (4000 bye)' });
    await within(3000, () => down.length === 1);
    expect(down[0]).toBe(error);
    // Down, and waiting to reconnect: a call says so.
    await expect(transport.catchUp()).rejects.toThrow(new TransportError('network', 'the WebSocket is down; reconnecting'));
    await expect(transport.push(jsonEvents(device, 1))).rejects.toThrow(new TransportError('network', 'the WebSocket is down; reconnecting'));
  });

  it('a failing sink: catchUp rejects with the sink’s own error, onDown hears a protocol error naming it, the page comes again', async () => {
    const { relay, devices } = await h.start(2);
    const [a, b] = devices as [TestDevice, TestDevice];
    await new RelayClient(deviceOptions(relay, a)).push(jsonEvents(a, 5));
    const diskFull = new Error('disk full');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const got = new Collector();
    let failed = false;
    got.onPage = async () => {
      if (failed) return;
      failed = true;
      await gate;
      throw diskFull;
    };
    const down: TransportError[] = [];
    const transport = ws(deviceOptions(relay, b));
    transport.onDown((error) => down.push(error));
    await transport.open(0, got.sink);
    const caught = rejection(transport.catchUp());
    release();
    expect(await caught).toBe(diskFull);
    await within(3000, () => down.length === 1);
    expect(down[0]).toBeInstanceOf(TransportError);
    expect(down[0]).toMatchObject({ kind: 'protocol', message: 'the event sink failed: disk full' });
    expect(down[0]?.cause).toBe(diskFull);
    // Reconnected from the cursor the failed page did not move: everything once.
    await within(3000, () => got.events.length >= 5);
    expect(await transport.catchUp()).toBe(5);
    expect(got.seqs()).toEqual(range(1, 5));
  });
});

describe('WsTransport: close', () => {
  it('says goodbye with 1000 "closing"; a waiting push and catchUp are rejected as closed', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        void socket.next('auth').then(() => socket.send(readyMessage(device.deviceId))); // never caught up, never acks
      },
    });
    const down: TransportError[] = [];
    const transport = ws(scriptedOptions(relay, device));
    transport.onDown((error) => down.push(error));
    await transport.open(0, async () => undefined);
    const push = rejection(transport.push(jsonEvents(device, 1)));
    const caught = rejection(transport.catchUp());
    await relay.sockets[0]!.next('push');
    await transport.close();
    const pushError = await push;
    expect(pushError).toBeInstanceOf(TransportError);
    expect(pushError).toMatchObject({ kind: 'network', message: 'the socket closed before the push was acknowledged: the transport is closed' });
    expect((pushError as TransportError).cause).toMatchObject({ kind: 'network', message: 'the transport is closed' });
    expect(await caught).toMatchObject({ kind: 'network', message: 'the transport is closed' });
    await within(2000, () => relay.sockets[0]?.closed !== undefined);
    expect(relay.sockets[0]?.closed).toEqual({ code: 1000, reason: 'closing' });
    expect(down).toEqual([]);
    await transport.close(); // twice is fine
    expect(transport.connectAttempts).toBe(1);
  });

  it('close while the socket is still upgrading drops it at once and fails the open', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({ upgrade: () => 'hang', onSocket: () => undefined });
    const transport = ws({ ...scriptedOptions(relay, device), connectTimeoutMs: 30_000 });
    const opening = rejection(transport.open(0, async () => undefined));
    await within(3000, () => relay.upgrades.length === 1);
    // Without dropping the half-open socket, close would wait out its 2 s grace.
    expect(await settlesWithin(transport.close(), 1900)).toBe(true);
    expect(await opening).toMatchObject({ kind: 'network', message: 'the transport is closed' });
  });

  it('close while the sink works finishes the close handshake instead of waiting out its grace', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        void socket.next('auth').then(() => socket.sendTogether(jsonFrame(readyMessage(device.deviceId, { head: 1 })), jsonFrame({ type: 'events', events: stored(device, [1]) })));
      },
    });
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let inSink = false;
    const transport = ws(scriptedOptions(relay, device));
    await transport.open(0, async () => {
      inSink = true;
      await held;
    });
    await within(3000, () => inSink);
    // The socket is paused while the sink works; without reading again, close would wait out its 2 s grace.
    expect(await settlesWithin(transport.close(), 1900)).toBe(true);
    expect(relay.sockets[0]?.closed).toEqual({ code: 1000, reason: 'closing' });
    release();
  });

  it('close of a socket whose relay went silent still finishes', async () => {
    const { relay, devices } = await h.start(1);
    const proxy = await startCuttableProxy(relay.url);
    h.defer(() => proxy.close());
    const transport = ws(deviceOptions(relay, devices[0]!, proxy.url));
    await transport.open(0, async () => undefined);
    expect(await transport.catchUp()).toBe(0);
    proxy.freeze();
    // The close handshake gets no answer: the transport gives up on it after its grace period (2 s).
    expect(await settlesWithin(transport.close(), 6000)).toBe(true);
    expect(transport.connected).toBe(false);
  });

  it('the sink opened with the transport is called while open resolves, and a close from it fails the open', async () => {
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({
      onSocket: (socket) => {
        void socket.next('auth').then(() => socket.sendTogether(jsonFrame(readyMessage(device.deviceId, { head: 1 })), jsonFrame({ type: 'events', events: stored(device, [1]) })));
      },
    });
    const transport = ws(scriptedOptions(relay, device));
    let closing: Promise<void> | undefined;
    const error = await rejection(
      transport.open(0, async () => {
        closing = transport.close();
      }),
    );
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ kind: 'network', message: 'the transport was closed while opening' });
    await closing;
    expect(transport.connected).toBe(false);
    await expect(transport.catchUp()).rejects.toThrow(new TransportError('network', 'the transport is closed'));
  });

  it('close while a reconnect waits for the sink opens no new socket', async () => {
    const { relay, devices } = await h.start(2);
    const [a, b] = devices as [TestDevice, TestDevice];
    const proxy = await startCuttableProxy(relay.url);
    h.defer(() => proxy.close());
    await new RelayClient(deviceOptions(relay, a)).push(jsonEvents(a, 3));
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const got = new Collector();
    got.onPage = (_events, call) => (call === 0 ? held : undefined);
    const down: TransportError[] = [];
    const transport = ws({ ...deviceOptions(relay, b, proxy.url), backoff: { initialMs: 10, maxMs: 10 } });
    transport.onDown((error) => down.push(error));
    await transport.open(0, got.sink);
    await until(() => got.pages.length === 0 && proxy.open === 1 && relay.stats().connections.length === 1);
    proxy.cut();
    await within(3000, () => down.length === 1);
    // The reconnect is due (10 ms) and waits for the page still in the sink.
    await sleep(100);
    await transport.close();
    release();
    await sleep(200);
    expect(transport.connectAttempts).toBe(1);
    expect(proxy.accepted).toBe(1);
  });
});

/**
 * The bases of the reconnect delays the transport schedules from now on. With Math.random at 0.999 each
 * delay is base × 0.9995, so they are the only timers of a fractional length: read from the timers set,
 * not from a clock, so no margin of a loaded machine decides the test.
 */
function reconnectDelays(): () => number[] {
  vi.spyOn(Math, 'random').mockReturnValue(0.999);
  const timers = vi.spyOn(globalThis, 'setTimeout');
  return () => timers.mock.calls.map((call) => call[1]).filter((ms): ms is number => typeof ms === 'number' && !Number.isInteger(ms)).map((ms) => Math.round(ms / 0.9995));
}

describe('WsTransport: reconnect backoff', () => {
  it('waits initialMs, doubling each failed attempt up to maxMs, and starts over once a socket caught up', async () => {
    const delays = reconnectDelays();
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({
      // Upgrades 1-3 (after the first drop) are refused with 503, which is retried; the rest accepted.
      upgrade: (index) => (index >= 1 && index <= 3 ? { status: 503 } : 'accept'),
      // 'caught_up' comes when the test sends it, once the socket is up.
      onSocket: (socket) => void socket.next('auth').then(() => socket.send(readyMessage(device.deviceId))),
    });
    /** Waits until the newest socket is up, then lets it catch up. */
    const upAndCaughtUp = async (sockets: number): Promise<void> => {
      await within(10_000, () => relay.sockets.length === sockets && transport.connected);
      relay.sockets[sockets - 1]!.send({ type: 'caught_up', seq: 0 });
      expect(await transport.catchUp()).toBe(0);
    };
    const down: TransportError[] = [];
    const transport = ws({ ...scriptedOptions(relay, device), backoff: { initialMs: 200, maxMs: 800 } });
    transport.onDown((error) => down.push(error));
    await transport.open(0, async () => undefined);
    await upAndCaughtUp(1);

    relay.sockets[0]!.terminate();
    await within(3000, () => down.length === 1);
    await expect(transport.push(jsonEvents(device, 1))).rejects.toThrow(new TransportError('network', 'the WebSocket is down; reconnecting'));
    await upAndCaughtUp(2);
    // 200, then 400 and 800 after each refused upgrade, then capped at 800.
    expect(delays()).toEqual([200, 400, 800, 800]);

    relay.sockets[1]!.terminate();
    await upAndCaughtUp(3);
    // The socket that caught up started the backoff over.
    expect(delays()).toEqual([200, 400, 800, 800, 200]);
    expect(relay.upgrades).toHaveLength(6);
    expect(down).toHaveLength(2);
  });

  it('does not start over for a socket that said ready but never caught up (a relay that accepts and drops)', async () => {
    const delays = reconnectDelays();
    const device = new TestMotebit().device();
    const relay = await scriptedRelay({
      // The first socket catches up; every later one says ready and delivers nothing.
      onSocket: (socket) => void socket.next('auth').then((auth) => {
        socket.send(readyMessage(device.deviceId));
        if (relay.sockets.length === 1) socket.send({ type: 'caught_up', seq: auth.after });
      }),
    });
    const transport = ws({ ...scriptedOptions(relay, device), backoff: { initialMs: 200, maxMs: 3200 } });
    await transport.open(0, async () => undefined);
    expect(await transport.catchUp()).toBe(0);
    for (let drop = 1; drop <= 3; drop++) {
      relay.sockets[drop - 1]!.terminate();
      await within(10_000, () => relay.sockets.length === drop + 1 && transport.connected);
    }
    expect(delays()).toEqual([200, 400, 800]);
  });

  it('starts over after a reconnect to a real relay that caught up as it said ready', async () => {
    // The relay sends 'ready' and a short backlog's 'caught_up' in one read: the socket has caught up before
    // the transport makes it current. (A bug once: the backoff then kept doubling, up to 30 s by default.)
    const delays = reconnectDelays();
    const { relay, devices } = await h.start(1);
    const proxy = await startCuttableProxy(relay.url);
    h.defer(() => proxy.close());
    const transport = ws({ ...deviceOptions(relay, devices[0]!, proxy.url), backoff: { initialMs: 50, maxMs: 3200 } });
    await transport.open(0, async () => undefined);
    expect(await transport.catchUp()).toBe(0);
    for (let drop = 1; drop <= 3; drop++) {
      proxy.cut();
      await within(10_000, () => proxy.accepted === drop + 1 && transport.connected);
      expect(await transport.catchUp()).toBe(0);
    }
    expect(delays()).toEqual([50, 50, 50]);
  });
});

describe('WsTransport: timers', () => {
  it('leaves no timer running once closed: heartbeat, re-auth, answered, refused and waiting pushes, close grace', async () => {
    const { relay, devices } = await h.start(1, { rateLimitCapacity: 1, rateLimitPerSecond: 0.01 });
    const a = devices[0]!;
    const timers = transportTimers();
    const transport = ws(deviceOptions(relay, a));
    await transport.open(0, async () => undefined);
    expect(await transport.catchUp()).toBe(0);
    expect((await transport.push(jsonEvents(a, 1)))[0]?.status).toBe('stored');
    expect(await rejection(transport.push(jsonEvents(a, 1)))).toMatchObject({ kind: 'refused', code: 'rate_limited' });
    const waiting = rejection(transport.push(jsonEvents(a, 1)));
    expect(timers()).toBeGreaterThan(0); // the heartbeat, the re-auth and the waiting push, at least
    await transport.close();
    expect(await waiting).toMatchObject({ kind: 'network', message: 'the socket closed before the push was acknowledged: the transport is closed' });
    await within(1900, () => timers() === 0);
  });

  it('leaves no timer running after a failed open', async () => {
    const { relay, devices } = await h.start(1);
    const stranger = new TestMotebit().device();
    const timers = transportTimers();
    const transport = ws({ ...deviceOptions(relay, stranger), motebitId: devices[0]!.motebit.motebitId, connectTimeoutMs: 20_000 });
    expect(await rejection(transport.open(0, async () => undefined))).toMatchObject({ kind: 'auth', code: 'unknown_device' });
    await within(1900, () => timers() === 0);
  });

  it('leaves no reconnect timer running when closed while waiting to reconnect', async () => {
    const { relay, devices } = await h.start(1);
    const proxy = await startCuttableProxy(relay.url);
    h.defer(() => proxy.close());
    const timers = transportTimers();
    const down: TransportError[] = [];
    const transport = ws({ ...deviceOptions(relay, devices[0]!, proxy.url), backoff: { initialMs: 10_000, maxMs: 10_000 } });
    transport.onDown((error) => down.push(error));
    await transport.open(0, async () => undefined);
    proxy.cut();
    await within(3000, () => down.length === 1);
    expect(timers()).toBe(1); // the reconnect, due in 5-10 s
    await transport.close();
    await within(1900, () => timers() === 0);
    expect(transport.connectAttempts).toBe(1);
  });
});
