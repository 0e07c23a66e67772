import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpTransport } from '../../main/sync/http-transport.ts';
import { RelayClient } from '../../main/sync/relay-client.ts';
import { TransportError } from '../../main/sync/transport.ts';
import { WsTransport, type WsTransportOptions } from '../../main/sync/ws-transport.ts';
import { startCuttableProxy } from '../support/cuttable-proxy.ts';
import { startNoUpgradeProxy } from '../support/no-upgrade-proxy.ts';
import { TestMotebit, type TestDevice } from '../relay/support.ts';
import { Collector, bodyJson, deviceOptions, harnesses, jsonEvents, range, rejection, until } from './support.ts';

const h = harnesses();
afterEach(() => h.cleanup());

/** Fast reconnects for tests; everything else at its default. */
const FAST: Partial<WsTransportOptions> = { backoff: { initialMs: 20, maxMs: 200 } };

function ws(options: WsTransportOptions): WsTransport {
  const transport = new WsTransport({ ...FAST, ...options });
  h.defer(() => transport.close());
  return transport;
}

describe('WsTransport', () => {
  it("may leave as many pushes unanswered as the relay's 'limits' said: 1 before it, 4 by default, fewer where the relay queues fewer", async () => {
    const { relay, devices } = await h.start(1);
    const transport = ws(deviceOptions(relay, devices[0]!));
    expect(transport.pushesInFlight).toBe(1);
    await transport.open(0, async () => undefined);
    expect(transport.pushesInFlight).toBe(4);

    const tight = await h.start(1, { wsMaxPendingMessages: 2 });
    const careful = ws(deviceOptions(tight.relay, tight.devices[0]!));
    await careful.open(0, async () => undefined);
    expect(careful.pushesInFlight).toBe(1);
  });

  it('delivers another device’s push live, without any pull', async () => {
    const { relay, devices } = await h.start(2);
    const [a, b] = devices as [TestDevice, TestDevice];
    const sender = ws(deviceOptions(relay, a));
    const receiver = ws(deviceOptions(relay, b));
    const got = new Collector();
    await sender.open(0, async () => undefined);
    await receiver.open(0, got.sink);
    expect(await receiver.catchUp()).toBe(0);

    const events = jsonEvents(a, 5, (i) => ({ text: `live ${i}` }));
    const results = await sender.push(events);
    expect(results).toEqual(events.map((event, index) => ({ event_id: event.event_id, status: 'stored', seq: index + 1 })));
    await got.waitFor(5);
    expect(got.seqs()).toEqual(range(1, 5));
    expect(got.events.map((event) => bodyJson(event.body))).toEqual(events.map((event) => bodyJson(event.body)));
    expect(await receiver.catchUp()).toBe(5);
    // The same batch again is answered with the same seqs, and delivers nothing new.
    expect((await sender.push(events)).map((r) => r.status)).toEqual(Array(5).fill('duplicate'));
    expect(await receiver.catchUp()).toBe(5);
    expect(got.events).toHaveLength(5);
  });

  it('streams a backlog to a slow sink one page at a time; catchUp waits for all of it', async () => {
    const { relay, devices } = await h.start(2, { wsPageEvents: 100 }); // several pages for 600 events
    const [a, b] = devices as [TestDevice, TestDevice];
    const client = new RelayClient(deviceOptions(relay, a));
    for (let i = 0; i < 4; i++) await client.push(jsonEvents(a, 150));
    const got = new Collector(3);
    const receiver = ws(deviceOptions(relay, b));
    await receiver.open(0, got.sink);
    expect(await receiver.catchUp()).toBe(600);
    expect(got.seqs()).toEqual(range(1, 600));
    expect(got.pages.length).toBeGreaterThan(1);
    expect(got.overlapped).toBe(false);
  });

  it('pauses the socket while the sink works, so received pages do not pile up', async () => {
    const { relay, devices } = await h.start(2, { wsPageEvents: 100 });
    const [a, b] = devices as [TestDevice, TestDevice];
    const client = new RelayClient(deviceOptions(relay, a));
    // About 6 MiB of backlog, in pages of at most 100 events.
    const big = (i: number) => ({ text: 'x'.repeat(1000), i });
    for (let i = 0; i < 24; i++) await client.push(jsonEvents(a, 256, big));
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const got = new Collector();
    got.onPage = (_events, call) => (call === 0 ? held : undefined);
    const receiver = ws(deviceOptions(relay, b));
    await receiver.open(0, got.sink);
    await until(() => got.pages.length === 0 && relay.stats().connections.length === 1);
    // Give the relay every chance to push more pages at a client that is not reading.
    await sleep(500);
    expect(receiver.backlog).toBeLessThanOrEqual(4);
    release();
    expect(await receiver.catchUp()).toBe(24 * 256);
    expect(got.seqs()).toEqual(range(1, 24 * 256));
  });

  it('resumes from a cursor after reopening: nothing missed, nothing twice', async () => {
    const { relay, devices } = await h.start(2);
    const [a, b] = devices as [TestDevice, TestDevice];
    const client = new RelayClient(deviceOptions(relay, a));
    await client.push(jsonEvents(a, 20));
    const firstRun = new Collector();
    const first = ws(deviceOptions(relay, b));
    await first.open(0, firstRun.sink);
    const cursor = await first.catchUp();
    expect(cursor).toBe(20);
    await first.close();
    await expect(first.catchUp()).rejects.toBeInstanceOf(TransportError);

    await client.push(jsonEvents(a, 15));
    const secondRun = new Collector();
    const second = ws(deviceOptions(relay, b));
    await second.open(cursor, secondRun.sink);
    expect(await second.catchUp()).toBe(35);
    expect([...firstRun.seqs(), ...secondRun.seqs()]).toEqual(range(1, 35));
  });

  it('open rejects when the upgrade is refused by a proxy, while HTTP through the same proxy works', async () => {
    const { relay, devices } = await h.start(2);
    const [a, b] = devices as [TestDevice, TestDevice];
    const proxy = await startNoUpgradeProxy(relay.url);
    h.defer(() => proxy.close());
    const down: TransportError[] = [];
    const socket = ws(deviceOptions(relay, a, proxy.url));
    socket.onDown((error) => down.push(error));
    const error = await rejection(socket.open(0, async () => undefined));
    expect(error).toBeInstanceOf(TransportError);
    expect(['network', 'refused']).toContain((error as TransportError).kind);
    expect(proxy.upgradesRefused).toBe(1);
    // A failed open is not a drop, and is not retried on its own.
    await sleep(100);
    expect(down).toEqual([]);
    expect(socket.connectAttempts).toBe(1);

    // A proxy that hangs up on upgrades instead.
    const hangup = await startNoUpgradeProxy(relay.url, { mode: 'hangup' });
    h.defer(() => hangup.close());
    const hungUp = await rejection(ws(deviceOptions(relay, a, hangup.url)).open(0, async () => undefined));
    expect(hungUp).toMatchObject({ kind: 'network' });

    // HTTP passes.
    const sender = new HttpTransport(deviceOptions(relay, a, proxy.url));
    const got = new Collector();
    const receiver = new HttpTransport(deviceOptions(relay, b, proxy.url));
    await sender.open(0, async () => undefined);
    await receiver.open(0, got.sink);
    await sender.push(jsonEvents(a, 3));
    expect(await receiver.catchUp()).toBe(3);
    expect(got.seqs()).toEqual([1, 2, 3]);
  });

  it('open rejects with network when nothing listens, and with auth for a device the relay does not know', async () => {
    const { relay, devices } = await h.start(1);
    const stranger = new TestMotebit().device();
    const unknown = ws({ ...deviceOptions(relay, stranger), motebitId: devices[0]!.motebit.motebitId });
    const refused = await rejection(unknown.open(0, async () => undefined));
    expect(refused).toMatchObject({ kind: 'auth', code: 'unknown_device' });

    const options = deviceOptions(relay, devices[0]!);
    await relay.close();
    const nothing = await rejection(ws(options).open(0, async () => undefined));
    expect(nothing).toBeInstanceOf(TransportError);
    expect(nothing).toMatchObject({ kind: 'network' });
  });

  it('a socket dropped mid-stream reports down, reconnects, and resumes from the cursor', async () => {
    const { relay, devices } = await h.start(2);
    const [a, b] = devices as [TestDevice, TestDevice];
    const proxy = await startCuttableProxy(relay.url);
    h.defer(() => proxy.close());
    const client = new RelayClient(deviceOptions(relay, a));
    for (let i = 0; i < 4; i++) await client.push(jsonEvents(a, 200));

    const got = new Collector(2);
    // Cut the connection while the sink holds the first page; the rest of the backlog is in flight.
    got.onPage = (_events, call) => {
      if (call === 0) proxy.cut();
    };
    const down: TransportError[] = [];
    let ups = 0;
    let cursorAtDrop = -1;
    const receiver = ws(deviceOptions(relay, b, proxy.url));
    receiver.onDown((error) => {
      down.push(error);
      cursorAtDrop = receiver.cursor;
    });
    receiver.onUp(() => ups++);
    await receiver.open(0, got.sink);
    await until(() => down.length === 1);
    expect(down[0]).toBeInstanceOf(TransportError);
    expect(down[0]?.kind).toBe('network');
    expect(cursorAtDrop).toBeLessThan(800); // it was mid-stream

    // More is pushed while the device may be away.
    await client.push(jsonEvents(a, 50));
    await got.waitFor(850);
    expect(ups).toBeGreaterThanOrEqual(1);
    expect(receiver.connectAttempts).toBeGreaterThanOrEqual(2);
    expect(await receiver.catchUp()).toBe(850);
    expect(got.seqs()).toEqual(range(1, 850));
    expect(got.overlapped).toBe(false);

    // Live again: a push after the reconnect arrives too.
    await client.push(jsonEvents(a, 1));
    await got.waitFor(851);
    expect(got.seqs()).toEqual(range(1, 851));
  });

  it('keeps retrying while the relay is unreachable, then resumes when it is back', async () => {
    const { relay, devices } = await h.start(2);
    const [a, b] = devices as [TestDevice, TestDevice];
    const proxy = await startCuttableProxy(relay.url);
    h.defer(() => proxy.close());
    const client = new RelayClient(deviceOptions(relay, a));
    const got = new Collector();
    const down: TransportError[] = [];
    const receiver = ws(deviceOptions(relay, b, proxy.url));
    receiver.onDown((error) => down.push(error));
    await receiver.open(0, got.sink);
    await client.push(jsonEvents(a, 10));
    await got.waitFor(10);

    proxy.refuse(true);
    proxy.cut();
    await until(() => down.length === 1);
    expect(receiver.connected).toBe(false);
    await expect(receiver.catchUp()).rejects.toMatchObject({ kind: 'network' });
    await expect(receiver.push(jsonEvents(b, 1))).rejects.toMatchObject({ kind: 'network' });
    await client.push(jsonEvents(a, 10));
    const attempts = receiver.connectAttempts;
    await until(() => receiver.connectAttempts >= attempts + 2);
    // Failed reconnects do not report again: one drop, one down.
    expect(down).toHaveLength(1);

    proxy.refuse(false);
    await got.waitFor(20);
    await until(() => receiver.connected);
    expect(await receiver.catchUp()).toBe(20);
    expect(got.seqs()).toEqual(range(1, 20));
  });

  it('detects a relay that stops answering with a client-side timeout', async () => {
    const { relay, devices } = await h.start(2);
    const b = devices[1]!;
    const proxy = await startCuttableProxy(relay.url);
    h.defer(() => proxy.close());
    const down: TransportError[] = [];
    const receiver = ws({ ...deviceOptions(relay, b, proxy.url), pingIntervalMs: 50, idleTimeoutMs: 300 });
    receiver.onDown((error) => down.push(error));
    await receiver.open(0, async () => undefined);
    await receiver.catchUp();
    proxy.freeze();
    await until(() => down.length === 1);
    expect(down[0]).toMatchObject({ kind: 'network' });
    expect(down[0]?.message).toMatch(/nothing heard/);
    // The proxy still passes new connections: it reconnects.
    await until(() => receiver.connected);
  });

  it('a revoked device is reported with kind auth and never reconnects', async () => {
    const { relay, motebit, devices } = await h.start(2);
    const [a, b] = devices as [TestDevice, TestDevice];
    const down: TransportError[] = [];
    const receiver = ws(deviceOptions(relay, b));
    receiver.onDown((error) => down.push(error));
    await receiver.open(0, async () => undefined);
    await receiver.catchUp();

    await new RelayClient(deviceOptions(relay, a)).revokeDevice({ identityKey: motebit.identity, deviceId: b.deviceId });
    await until(() => down.length === 1);
    expect(down[0]).toBeInstanceOf(TransportError);
    expect(down[0]).toMatchObject({ kind: 'auth', code: 'revoked_device' });
    await expect(receiver.push(jsonEvents(b, 1))).rejects.toMatchObject({ kind: 'auth', code: 'revoked_device' });
    await expect(receiver.catchUp()).rejects.toMatchObject({ kind: 'auth' });
    // Far longer than the backoff (20-200 ms): no new socket was tried.
    await sleep(500);
    expect(receiver.connectAttempts).toBe(1);
    expect(relay.stats().connections.filter((c) => c.deviceId === b.deviceId)).toEqual([]);
    expect(down).toHaveLength(1);
  });

  it('a refused push is rejected with the relay code; the socket stays up', async () => {
    const { relay, devices } = await h.start(1, { rateLimitCapacity: 1, rateLimitPerSecond: 0.01 });
    const a = devices[0]!;
    const down: TransportError[] = [];
    const sender = ws(deviceOptions(relay, a));
    sender.onDown((error) => down.push(error));
    await sender.open(0, async () => undefined);
    expect((await sender.push(jsonEvents(a, 1)))[0]?.status).toBe('stored');
    const error = await rejection(sender.push(jsonEvents(a, 1)));
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ kind: 'refused', code: 'rate_limited' });
    expect(sender.connected).toBe(true);
    expect(down).toEqual([]);
  });

  it('renews its token in-band before it expires, without reconnecting', async () => {
    // No clock skew allowance and 4-second tokens: without a re-auth the relay would close at expiry (4419).
    const { relay, devices } = await h.start(2, { clockSkewSeconds: 0 });
    const [a, b] = devices as [TestDevice, TestDevice];
    const down: TransportError[] = [];
    const got = new Collector();
    const receiver = ws({ ...deviceOptions(relay, b), tokenLifetimeSeconds: 4 });
    receiver.onDown((error) => down.push(error));
    await receiver.open(0, got.sink);
    await sleep(6000);
    expect(down).toEqual([]);
    expect(receiver.connectAttempts).toBe(1);
    await new RelayClient(deviceOptions(relay, a)).push(jsonEvents(a, 2));
    await got.waitFor(2);
    expect(got.seqs()).toEqual([1, 2]);
  });

  it('close stops delivery and reconnection', async () => {
    const { relay, devices } = await h.start(2);
    const [a, b] = devices as [TestDevice, TestDevice];
    const got = new Collector();
    const down: TransportError[] = [];
    const receiver = ws(deviceOptions(relay, b));
    receiver.onDown((error) => down.push(error));
    await receiver.open(0, got.sink);
    await receiver.close();
    await new RelayClient(deviceOptions(relay, a)).push(jsonEvents(a, 3));
    await sleep(200);
    expect(got.events).toEqual([]);
    expect(down).toEqual([]);
    expect(receiver.connectAttempts).toBe(1);
    await until(() => relay.stats().connections.length === 0);
  });
});
