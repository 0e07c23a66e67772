// The engine's transports, timer and failure words (issue 15: main/sync/engine.ts, ensureTransport to the
// end), with real devices, a real relay on 127.0.0.1 and real transports (behind a proxy that refuses
// WebSocket upgrades, one that can cut connections, or one that rewrites the relay's answers):
// which transport the engine asks for and keeps, falling back to HTTP with the log line and the growing
// delay before WebSocket is tried again (capped), failing instead of falling back when only WebSocket is
// allowed or the relay refuses the device's sign-in, the status naming the transport as soon as it is open,
// a live socket that drops (logged, HTTP at once, WebSocket after the delay) or is closed because the device
// was revoked, closing the transport on pause, the timed cycle's slot with jitter, the timer cleared, the
// words of refused pushes, when a failure marks the device revoked, and a failure's kind, details and
// "Sync retries by itself." Time is the engine's own clock (EngineOptions.now) and what was scheduled is
// read, never measured.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Device } from '../../main/app/device.ts';
import { errorWords } from '../../main/app/error-words.ts';
import { SyncEngine, type CycleResult, type TransportPreference } from '../../main/sync/engine.ts';
import { HttpTransport } from '../../main/sync/http-transport.ts';
import type { Transport, TransportKind } from '../../main/sync/transport.ts';
import { WsTransport } from '../../main/sync/ws-transport.ts';
import type { SyncStatus } from '../../shared/portable/status.ts';
import { startCuttableProxy, type CuttableProxy } from '../support/cuttable-proxy.ts';
import { startNoUpgradeProxy, type NoUpgradeProxy } from '../support/no-upgrade-proxy.ts';
import { WithStatus, startRewritingProxy, type Answer, type RewritingProxy } from '../support/rewriting-proxy.ts';
import { Lab, eventually, freePort } from '../support/devices.ts';
import type { RunningRelay } from '../../relay/server.ts';

let lab: Lab;
const closers: (() => Promise<unknown>)[] = [];
beforeEach(() => void (lab = new Lab()));
afterEach(async () => {
  vi.restoreAllMocks();
  for (const close of closers.splice(0).reverse()) await close();
  await lab.close();
});

// ---- helpers --------------------------------------------------------------------------------------

interface Line {
  fields: object;
  message: string;
}

interface Rig {
  device: Device;
  engine: SyncEngine;
  /** The kinds of transport the engine asked for, in order. */
  asked: string[];
  /** Where the next WebSocket connects (the relay, or a proxy), and the audience its token names. */
  ws: { url: string; audience: string };
  /** The engine's clock: moves only when the test moves it. */
  clock: { now: number };
  infos: Line[];
  warnings: Line[];
  /** Every transport the engine was given, in order. */
  transports: Transport[];
}

/**
 * An engine built directly over a real device's store and relay client, so that the test chooses where each
 * WebSocket goes, the first WebSocket retry delay, the jitter and the clock. HTTP goes to the relay itself.
 */
async function rig(relay: RunningRelay, options: { transport: TransportPreference; wsUrl?: string; wsRetryFirstMs?: number; jitter?: number; intervalMs?: number }): Promise<Rig> {
  const device = await lab.create(relay.url, { encryption: false, name: 'a' });
  const { identity } = device;
  const asked: string[] = [];
  const transports: Transport[] = [];
  const ws = { url: options.wsUrl ?? relay.url, audience: relay.url };
  const clock = { now: Date.now() };
  const infos: Line[] = [];
  const warnings: Line[] = [];
  const connect = (kind: TransportKind): Transport => {
    asked.push(kind);
    const transport: Transport =
      kind === 'websocket'
        ? new WsTransport({ relayUrl: ws.url, audience: ws.audience, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey })
        : new HttpTransport(device.relay);
    transports.push(transport);
    return transport;
  };
  const engine = new SyncEngine({
    store: device.store,
    relay: device.relayControl,
    credentials: identity.credentials,
    connect,
    transport: options.transport,
    intervalMs: options.intervalMs ?? 3_600_000,
    ...(options.jitter === undefined ? {} : { jitter: options.jitter }),
    ...(options.wsRetryFirstMs === undefined ? {} : { wsRetryFirstMs: options.wsRetryFirstMs }),
    now: () => clock.now,
    log: { info: (fields, message) => infos.push({ fields, message }), warn: (fields, message) => warnings.push({ fields, message }) },
  });
  closers.push(() => engine.stop());
  return { device, engine, asked, ws, clock, infos, warnings, transports };
}

async function noUpgrade(relay: RunningRelay): Promise<NoUpgradeProxy> {
  const proxy = await startNoUpgradeProxy(relay.url);
  closers.push(() => proxy.close());
  return proxy;
}

async function cuttable(relay: RunningRelay): Promise<CuttableProxy> {
  const proxy = await startCuttableProxy(relay.url);
  closers.push(() => proxy.close());
  return proxy;
}

/** A real relay behind a proxy that can rewrite its answers (and refuses WebSocket upgrades). */
async function lyingRelay(): Promise<{ proxy: RewritingProxy; relay: RunningRelay }> {
  let target: RunningRelay | null = null;
  const proxy = await startRewritingProxy(() => target!.url, await freePort());
  closers.push(() => proxy.close());
  target = await lab.relay({ audience: proxy.url });
  return { proxy, relay: target };
}

const isFrontier = (answer: Answer): boolean => answer.method === 'GET' && answer.path.endsWith('/frontier');
const isPush = (answer: Answer): boolean => answer.method === 'POST' && answer.path.endsWith('/events') && answer.status === 200;

const FALLBACK = 'WebSocket unavailable, using HTTP';
const REFUSED_UPGRADE = 'the WebSocket upgrade was refused: HTTP 403';
const NETWORK_STEP = 'check the network, the relay address and that the relay is running. To run your own relay: npx motebit-relay (it prints its address).';

// ---- choosing and keeping a transport -----------------------------------------------------------

describe('choosing and keeping a transport', () => {
  it('auto: a cycle on WebSocket keeps its socket; the next cycle asks for no other transport', async () => {
    const relay = await lab.relay();
    const r = await rig(relay, { transport: 'auto' });
    expect((await r.engine.syncNow()).ok).toBe(true);
    expect((await r.engine.syncNow()).ok).toBe(true);
    expect(r.asked).toEqual(['websocket']);
    expect(r.engine.status().transport).toBe('websocket');
  });

  it('http: one HTTP transport is asked for and kept across cycles; WebSocket is never tried', async () => {
    const relay = await lab.relay();
    const r = await rig(relay, { transport: 'http' });
    expect((await r.engine.syncNow()).ok).toBe(true);
    expect((await r.engine.syncNow()).ok).toBe(true);
    expect(r.asked).toEqual(['http']);
    expect(r.engine.status().transport).toBe('http');
  });

  it.each(['websocket', 'http'] as const)('the status names the transport (%s) as soon as it is open, while the cycle still connects', async (kind) => {
    const relay = await lab.relay();
    const r = await rig(relay, { transport: kind === 'http' ? 'http' : 'auto' });
    r.device.put('memory/1', 1);
    const heard: SyncStatus[] = [];
    r.engine.onStatus((status) => heard.push(status));
    expect((await r.engine.syncNow()).ok).toBe(true);
    const first = heard.find((status) => status.transport !== null);
    expect(first).toMatchObject({ state: 'syncing', transport: kind, progress: { phase: 'connect' } });
  });

  it('auto, WebSocket refused: HTTP carries the cycle, the log says why and when WebSocket is tried again, and the delay doubles up to 10 minutes', async () => {
    const relay = await lab.relay();
    const proxy = await noUpgrade(relay);
    const r = await rig(relay, { transport: 'auto', wsUrl: proxy.url, wsRetryFirstMs: 400_000 });
    const start = r.clock.now;
    r.device.put('memory/1', 'over http');
    expect(await r.engine.syncNow()).toMatchObject({ ok: true, pushed: 1 });
    expect(r.asked).toEqual(['websocket', 'http']);
    expect(r.engine.status().transport).toBe('http');
    expect(r.infos.filter((line) => line.message === FALLBACK)).toEqual([{ fields: { error: REFUSED_UPGRADE, retryInMs: 400_000 }, message: FALLBACK }]);

    // Within the delay: HTTP is kept and WebSocket is not tried.
    r.clock.now = start + 399_999;
    expect((await r.engine.syncNow()).ok).toBe(true);
    expect(r.asked).toEqual(['websocket', 'http']);
    expect(proxy.upgradesRefused).toBe(1);

    // At the delay: WebSocket is tried again; refused, the HTTP transport already open carries on.
    r.clock.now = start + 400_000;
    expect((await r.engine.syncNow()).ok).toBe(true);
    expect(r.asked).toEqual(['websocket', 'http', 'websocket']);
    expect(r.engine.status().transport).toBe('http');

    r.clock.now = start + 400_000 + 600_000;
    expect((await r.engine.syncNow()).ok).toBe(true);
    expect(r.asked).toEqual(['websocket', 'http', 'websocket', 'websocket']);
    expect(r.infos.filter((line) => line.message === FALLBACK).map((line) => line.fields)).toEqual([
      { error: REFUSED_UPGRADE, retryInMs: 400_000 },
      { error: REFUSED_UPGRADE, retryInMs: 600_000 },
      { error: REFUSED_UPGRADE, retryInMs: 600_000 },
    ]);
  });

  it('websocket only, WebSocket refused: the cycle fails and HTTP is never asked for', async () => {
    const relay = await lab.relay();
    const proxy = await noUpgrade(relay);
    const r = await rig(relay, { transport: 'websocket', wsUrl: proxy.url });
    r.device.put('memory/1', 'stays queued');
    const result = await r.engine.syncNow();
    expect(result).toMatchObject({ ok: false, error: { kind: 'relay', details: REFUSED_UPGRADE } });
    expect(r.asked).toEqual(['websocket']);
    expect(r.engine.status()).toMatchObject({ state: 'error', transport: null, pendingOut: 1 });
    expect(r.infos.filter((line) => line.message === FALLBACK)).toEqual([]);
  });

  it('auto, the relay refuses the WebSocket sign-in: the cycle fails in words instead of falling back to HTTP', async () => {
    const relay = await lab.relay();
    const r = await rig(relay, { transport: 'auto' });
    r.ws.audience = 'http://127.0.0.1:9'; // a token for another relay's address
    const result = await r.engine.syncNow();
    expect(result).toMatchObject({ ok: false, error: { kind: 'auth', message: 'the relay at this address knows itself by another address, so it refused this device' } });
    expect(r.asked).toEqual(['websocket']);
    expect(r.engine.status()).toMatchObject({ state: 'error', transport: null });
    expect(r.infos.filter((line) => line.message === FALLBACK)).toEqual([]);
  });
});

// ---- a live socket going down -------------------------------------------------------------------

describe('a live socket going down', () => {
  it('a started engine whose socket drops logs it, runs a cycle at once over HTTP, and WebSocket, still refused, waits twice the first delay', async () => {
    const relay = await lab.relay();
    const cut = await cuttable(relay);
    const r = await rig(relay, { transport: 'auto', wsUrl: cut.url, wsRetryFirstMs: 100_000 });
    const cycles: CycleResult[] = [];
    r.engine.onCycle((result) => cycles.push(result));
    r.engine.start();
    await eventually(() => cycles.length === 1 && r.engine.status().transport === 'websocket', 'the first cycle runs on WebSocket', 10_000);
    const downAt = r.clock.now;

    r.ws.url = (await noUpgrade(relay)).url; // from now on the relay's WebSocket is refused
    cut.cut();
    await eventually(() => cycles.length === 2, 'a cycle runs at once after the drop', 10_000);
    expect(cycles[1]!.ok).toBe(true);
    expect(r.engine.status().transport).toBe('http');
    expect(r.warnings.filter((line) => line.message === 'live connection lost')).toEqual([{ fields: { kind: 'network', error: expect.stringMatching(/^the socket closed/) }, message: 'live connection lost' }]);

    r.clock.now = downAt + 100_000;
    expect((await r.engine.syncNow()).ok).toBe(true);
    // The drop doubled the delay: the first refusal after it waits 200 s before WebSocket is tried again.
    expect(r.infos.filter((line) => line.message === FALLBACK)[0]).toEqual({ fields: { error: REFUSED_UPGRADE, retryInMs: 200_000 }, message: FALLBACK });
  });

  it('after a live socket drops, auto carries on over HTTP at once and tries WebSocket again only after the backoff', async () => {
    const relay = await lab.relay();
    const cut = await cuttable(relay);
    const r = await rig(relay, { transport: 'auto', wsUrl: cut.url, wsRetryFirstMs: 100_000 });
    const cycles: CycleResult[] = [];
    r.engine.onCycle((result) => cycles.push(result));
    r.engine.start();
    await eventually(() => cycles.length === 1 && r.engine.status().transport === 'websocket', 'the first cycle runs on WebSocket', 10_000);
    const downAt = r.clock.now;
    cut.cut(); // WebSocket itself still works: only this socket is gone
    await eventually(() => cycles.length === 2, 'a cycle runs at once after the drop', 10_000);
    expect(cycles[1]!.ok).toBe(true);
    expect(r.asked).toEqual(['websocket', 'http']);

    r.clock.now = downAt + 99_999;
    expect((await r.engine.syncNow()).ok).toBe(true);
    expect(r.asked).toEqual(['websocket', 'http']);
    r.clock.now = downAt + 100_000;
    expect((await r.engine.syncNow()).ok).toBe(true);
    expect(r.asked).toEqual(['websocket', 'http', 'websocket']);
    expect(r.engine.status().transport).toBe('websocket');
  });

  it('after a live socket drops, a device set to WebSocket only reconnects over WebSocket at once, never HTTP', async () => {
    const relay = await lab.relay();
    const cut = await cuttable(relay);
    const r = await rig(relay, { transport: 'websocket', wsUrl: cut.url, wsRetryFirstMs: 100_000 });
    const cycles: CycleResult[] = [];
    r.engine.onCycle((result) => cycles.push(result));
    r.engine.start();
    await eventually(() => cycles.length === 1 && r.engine.status().transport === 'websocket', 'the first cycle runs on WebSocket', 10_000);
    cut.cut();
    await eventually(() => cycles.length === 2, 'a cycle runs at once after the drop', 10_000);
    expect(cycles[1]!.ok).toBe(true);
    expect(r.asked).toEqual(['websocket', 'websocket']);
  });

  it('an engine that was never started, whose socket drops: the status says there is no transport, and no cycle runs', async () => {
    const relay = await lab.relay();
    const cut = await cuttable(relay);
    const r = await rig(relay, { transport: 'auto', wsUrl: cut.url });
    expect((await r.engine.syncNow()).ok).toBe(true);
    const heard: SyncStatus[] = [];
    r.engine.onStatus((status) => heard.push(status));
    cut.cut();
    await eventually(() => heard.length > 0, 'the engine says the socket is gone', 5_000);
    expect(heard[0]).toMatchObject({ state: 'idle', transport: null, lastError: null, nextCycleAt: null });
    expect(r.asked).toEqual(['websocket']);
  });

  it('a live socket closed because the device was revoked: the status says so at once, without a cycle', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { name: 'a' });
    const joined = await lab.join(a, { name: 'b' });
    await joined.close();
    const warnings: Line[] = [];
    const b = lab.track(await Device.open({ ...lab.home('b'), log: { info: () => {}, warn: (fields, message) => warnings.push({ fields, message }) } }));
    expect((await b.syncNow()).ok).toBe(true);
    expect(b.status().transport).toBe('websocket');
    const cycles: CycleResult[] = [];
    b.engine.onCycle((result) => cycles.push(result));

    await a.revoke(b.identity.deviceId);
    await eventually(() => b.status().revoked === true, 'b hears it was revoked', 5_000);
    expect(b.status()).toMatchObject({
      state: 'error',
      transport: null,
      lastError: { kind: 'auth', message: 'this device was revoked: it can no longer sync this motebit', nextStep: 'a revoked device cannot sync again: join the motebit again with a pairing code from another device' },
    });
    expect(cycles).toEqual([]);
    expect(warnings).toEqual([
      { fields: { kind: 'auth', error: 'this device has been revoked' }, message: 'live connection lost' },
      { fields: { kind: 'auth', error: 'this device was revoked: it can no longer sync this motebit' }, message: 'sync cycle failed' },
    ]);
  });

  it('pause closes the live socket', async () => {
    const relay = await lab.relay();
    const cut = await cuttable(relay);
    const r = await rig(relay, { transport: 'auto', wsUrl: cut.url });
    expect((await r.engine.syncNow()).ok).toBe(true);
    expect(cut.open).toBe(1);
    await r.engine.pause();
    await eventually(() => cut.open === 0, 'the socket is closed', 5_000);
    expect(r.engine.status()).toMatchObject({ state: 'paused', transport: null });
  });
});

// ---- the timer ----------------------------------------------------------------------------------

describe('the timer', () => {
  it('the next timed cycle is due one interval from now, moved by jitter × interval × (2 × random − 1), and listeners hear when', async () => {
    const relay = await lab.relay();
    const r = await rig(relay, { transport: 'http', intervalMs: 1_000_000, jitter: 0.2 });
    vi.spyOn(Math, 'random').mockReturnValue(0.75); // 2 × 0.75 − 1 = 0.5: the slot moves by +10 %
    const heard: SyncStatus[] = [];
    r.engine.onStatus((status) => heard.push(status));
    const cycles: CycleResult[] = [];
    r.engine.onCycle((result) => cycles.push(result));
    r.engine.start();
    await eventually(() => cycles.length === 1 && r.engine.status().nextCycleAt !== null, 'the first cycle ends and the next is due', 10_000);
    expect(r.engine.status().nextCycleAt).toBe(r.clock.now + 1_100_000);
    expect(heard.at(-1)?.nextCycleAt).toBe(r.clock.now + 1_100_000);
  });

  it('pausing clears the timer of the next timed cycle', async () => {
    const relay = await lab.relay();
    const r = await rig(relay, { transport: 'http', intervalMs: 7_654_321, jitter: 0 });
    const set = vi.spyOn(globalThis, 'setTimeout');
    const cleared = vi.spyOn(globalThis, 'clearTimeout');
    const cycles: CycleResult[] = [];
    r.engine.onCycle((result) => cycles.push(result));
    r.engine.start();
    await eventually(() => cycles.length === 1 && r.engine.status().nextCycleAt !== null, 'the next cycle is due', 10_000);
    const index = set.mock.calls.findIndex((call) => call[1] === 7_654_321);
    expect(index).toBeGreaterThanOrEqual(0);
    const timer = set.mock.results[index]!.value as NodeJS.Timeout;
    await r.engine.pause();
    expect(cleared.mock.calls.map((call) => call[0])).toContain(timer);
    expect(r.engine.status().nextCycleAt).toBeNull();
  });
});

// ---- failures in words --------------------------------------------------------------------------

describe('failures in words', () => {
  it('a push of which the relay refuses some events fails the cycle, naming how many of how many and why', async () => {
    const { proxy } = await lyingRelay();
    const a = await lab.create(proxy.url, { name: 'a', transport: 'http' });
    a.put('memory/1', 1);
    a.put('memory/2', 2);
    proxy.rewrite((answer) => {
      if (!isPush(answer)) return undefined;
      const body = answer.body as { results: { event_id: string }[] } & Record<string, unknown>;
      return { ...body, results: body.results.map((r, i) => (i === 1 ? { event_id: r.event_id, status: 'rejected', reason: 'device_seq_gap' } : r)) };
    });
    const result = await a.syncNow();
    expect(result).toMatchObject({
      ok: false,
      error: {
        kind: 'relay',
        message: 'the relay refused 1 of 2 events (device_seq_gap)',
        nextStep: 'this device\'s log disagrees with the relay; sync again, and if it persists report it with the output of "motebit-sync status --json"',
      },
    });
    expect(a.status().pendingOut).toBe(2);
  });

  it.each([
    [401, 'revoked_device', true],
    [401, 'device_revoked', true],
    [401, 'bad_signature', false],
    [409, 'device_revoked', false],
  ] as const)('a frontier refused with HTTP %i and code %s: revoked is %s', async (status, code, revoked) => {
    const { proxy } = await lyingRelay();
    const a = await lab.create(proxy.url, { name: 'a', transport: 'http' });
    proxy.rewrite((answer) => (isFrontier(answer) ? new WithStatus(status, { error: { code, message: 'refused by the test' } }) : undefined));
    const result = await a.syncNow();
    expect(result.ok).toBe(false);
    expect(a.status().revoked).toBe(revoked);
  });

  it('a refusal of this device (auth) keeps the open transport, which is not at fault; a network failure drops it', async () => {
    const { proxy } = await lyingRelay();
    const a = await lab.create(proxy.url, { name: 'a', transport: 'http' });
    expect((await a.syncNow()).ok).toBe(true);
    expect(a.status().transport).toBe('http');
    proxy.rewrite((answer) => (isFrontier(answer) ? new WithStatus(401, { error: { code: 'bad_signature', message: 'refused by the test' } }) : undefined));
    expect((await a.syncNow()).error?.kind).toBe('auth');
    expect(a.status().transport).toBe('http');
    proxy.rewrite((answer) => (isFrontier(answer) ? new WithStatus(503, { error: { code: 'unavailable', message: 'refused by the test' } }) : undefined));
    expect((await a.syncNow()).error?.kind).toBe('network');
    expect(a.status().transport).toBeNull();
  });

  it('an auth failure keeps its own next step (no "Sync retries by itself.") and its details', async () => {
    const { proxy } = await lyingRelay();
    const a = await lab.create(proxy.url, { name: 'a', transport: 'http' });
    proxy.rewrite((answer) => (isFrontier(answer) ? new WithStatus(401, { error: { code: 'bad_signature', message: 'refused by the test' } }) : undefined));
    const result = await a.syncNow();
    expect(result.error).toEqual({
      kind: 'auth',
      message: 'the relay does not accept this device for this motebit',
      nextStep: 'check the relay address, or join the motebit again with a pairing code from another device',
      details: expect.stringMatching(/^bad_signature: .*refused by the test$/),
      at: expect.any(Number),
    });
  });

  it('a network failure says "Sync retries by itself." after its next step', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { name: 'a', transport: 'http' });
    await relay.close();
    const result = await a.syncNow();
    expect(result.error).toMatchObject({ kind: 'network', message: 'the relay could not be reached', nextStep: `${NETWORK_STEP} Sync retries by itself.` });
  });

  it.each([
    [500, 'internal', 'the relay had an internal problem', 'try again in a while; if it lasts, tell the relay operator.'],
    [429, 'rate_limited', 'the relay is busy with too many requests from this network', 'wait a minute before trying again.'],
  ] as const)('a relay that answers %i (%s) fails the cycle in words any step would use, then "Sync retries by itself."', async (status, code, message, step) => {
    const { proxy } = await lyingRelay();
    const a = await lab.create(proxy.url, { name: 'a', transport: 'http' });
    proxy.rewrite((answer) => (isFrontier(answer) ? new WithStatus(status, { error: { code, message: 'refused by the test' } }) : undefined));
    const result = await a.syncNow();
    expect(result.error).toMatchObject({ kind: 'network', message, nextStep: `${step} Sync retries by itself.` });
    // A step run once (here: asking the relay directly) says what to do, and no more.
    expect(errorWords(await a.relay.frontier().catch((error: unknown) => error))).toMatchObject({ kind: 'network', message, nextStep: step });
  });

  it("the engine's own failure keeps its details: a relay that says it keeps snapshots but has no such route", async () => {
    const { proxy } = await lyingRelay();
    const a = await lab.create(proxy.url, { name: 'a', transport: 'http' });
    proxy.rewrite((answer) => (answer.path.includes('/snapshots') ? new WithStatus(404, { error: { code: 'not_found', message: 'no such route' } }) : undefined));
    const result = await a.syncNow();
    expect(result.error).toMatchObject({ kind: 'relay', message: expect.stringMatching(/^the relay says it keeps snapshots \(version \d+\) but answered that it has none of them$/), details: expect.stringMatching(/not_found: no such route$/) });
  });
});
