// Where every received page goes (issue 15: main/sync/engine.ts, receive to noteFailure), with real devices
// against a real relay on 127.0.0.1 (behind a rewriting proxy where the relay must lie or page differently):
// what is applied, rejected and logged; the cursor; when the membership log is read again within a page (an
// event naming a newer position, events sealed under a key this device does not hold yet) and what a failed
// read does; how a page counts toward the progress (this device's own events never "received", a time left
// from the pace so far) and toward live arrivals; and the error a live page with bad events shows at once.
// Log lines are pinned too: operators read them.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Device } from '../../main/app/device.ts';
import { PULL_CURSOR } from '../../main/store/relay-ledger.ts';
import { SyncEngine } from '../../main/sync/engine.ts';
import { toWire } from '../../main/sync/codec.ts';
import { EncryptedTransport } from '../../main/sync/encrypted-transport.ts';
import { HttpTransport } from '../../main/sync/http-transport.ts';
import { RelayClient } from '../../main/sync/relay-client.ts';
import { WsTransport } from '../../main/sync/ws-transport.ts';
import type { RunningRelay } from '../../relay/server.ts';
import { toBase64Url } from '../../shared/encoding.ts';
import type { SyncProgress } from '../../shared/portable/status.ts';
import type { StoredWireEvent } from '../../shared/portable/wire.ts';
import { Lab, eventually, freePort, progressDuring, syncAll } from '../support/devices.ts';
import type { LogLine as Line } from '../support/devices.ts';
import { WithStatus, startRewritingProxy, type Answer, type RewritingProxy } from '../support/rewriting-proxy.ts';

let lab: Lab;
const proxies: RewritingProxy[] = [];
const engines: SyncEngine[] = [];
beforeEach(() => void (lab = new Lab()));
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
  for (const proxy of proxies.splice(0)) await proxy.close();
  await lab.close();
});

// ---- helpers --------------------------------------------------------------------------------------

/** A real relay behind a proxy that can lie. */
async function lyingRelay(): Promise<{ proxy: RewritingProxy; relay: RunningRelay }> {
  let target: RunningRelay | null = null;
  const proxy = await startRewritingProxy(() => target!.url, await freePort());
  proxies.push(proxy);
  target = await lab.relay({ audience: proxy.url });
  return { proxy, relay: target };
}

type Page = { events: StoredWireEvent[]; more?: boolean } & Record<string, unknown>;
const isPage = (answer: Answer): answer is Answer & { body: Page } => answer.method === 'GET' && answer.path.endsWith('/events') && answer.status === 200;
const isMembership = (answer: Answer): boolean => answer.method === 'GET' && answer.path.endsWith('/membership');

function flipBit(body: string): string {
  const bytes = Buffer.from(body, 'base64url');
  bytes[bytes.length >> 1]! ^= 0x01;
  return toBase64Url(bytes);
}

/** The plaintext event inside a wire body (a motebit without encryption). */
const inner = (body: string): Record<string, unknown> => JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Record<string, unknown>;
const wireBody = (text: string): string => toBase64Url(Buffer.from(text, 'utf8'));

const messages = (lines: Line[], message: string): Line[] => lines.filter((line) => line.message === message);

/**
 * The relay, as `device` reads it, serves its membership log without the entries after `head` the first
 * time the device asks (as if they were written just after), honestly from then on.
 */
function hideMembershipOnce(proxy: RewritingProxy, device: Device, head: number): { asked: () => number } {
  let asked = 0;
  proxy.rewrite((answer) => {
    if (answer.signer !== device.identity.deviceId || !isMembership(answer)) return undefined;
    asked++;
    return asked === 1 ? { ...(answer.body as object), entries: [], head } : undefined;
  });
  return { asked: () => asked };
}

// ---- the membership log, read again within a page --------------------------------------------------

describe('reading the membership log again within a page', () => {
  it('a page whose events name no newer position than this device holds does not read the log again: one read a cycle', async () => {
    const { proxy } = await lyingRelay();
    const { device: a } = await lab.found(proxy.url, { name: 'a', transport: 'http' });
    expect((await a.syncNow()).ok).toBe(true);
    expect(a.store.membership.head()).toBe(0); // the genesis alone: its events name position 0
    let reads = 0;
    proxy.rewrite((answer) => void (isMembership(answer) && reads++));
    a.put('note/1', 1);
    a.put('note/2', 2);
    expect(await a.syncNow()).toMatchObject({ ok: true, pushed: 2 }); // its own events come back in the pull
    expect(reads).toBe(1); // the cycle's own read, at its start
  });

  it('an event whose position is not a whole number names none: it makes no read of the log, and it is refused', async () => {
    const { proxy } = await lyingRelay();
    const { device: a } = await lab.found(proxy.url, { name: 'a', transport: 'http', encryption: false });
    expect((await a.syncNow()).ok).toBe(true);
    expect(a.store.membership.head()).toBe(0); // the genesis alone
    a.put('note/1', 1);
    a.put('note/2', 2);
    a.put('note/3', 3);
    // Its own events come back in the pull: served with a position that is text or a fraction.
    const positions: unknown[] = ['7', 1.5];
    let reads = 0;
    proxy.rewrite((answer) => {
      if (isMembership(answer)) reads++;
      if (!isPage(answer)) return undefined;
      return { ...answer.body, events: answer.body.events.map((e, i) => ({ ...e, body: wireBody(JSON.stringify({ ...inner(e.body), m: positions[i % 2] })) })) };
    });
    expect(await a.syncNow()).toMatchObject({ ok: false, pushed: 3, error: { kind: 'integrity' } });
    expect(reads).toBe(1); // the cycle's own read, at its start
  });

  it('an event naming a position beyond this device\'s log: the log is read first, and the event is applied', async () => {
    const { proxy } = await lyingRelay();
    const { device: a, recoveryKey } = await lab.found(proxy.url, { name: 'a', transport: 'http' });
    const b = await lab.recover(proxy.url, a.identity.motebitId, recoveryKey, { name: 'b', transport: 'http' });
    await syncAll([a, b]);
    const bHead = b.store.membership.head();
    await lab.recover(proxy.url, a.identity.motebitId, recoveryKey, { name: 'd', transport: 'http' }); // a new member: a new entry
    expect((await a.syncNow()).ok).toBe(true);
    a.put('after-d', 'from a');
    expect((await a.syncNow()).ok).toBe(true);
    expect([...a.store.events()].find((event) => event.entity === 'after-d')!.m).toBe(bHead + 1);
    const membership = hideMembershipOnce(proxy, b, bHead);
    expect(await b.syncNow()).toMatchObject({ ok: true, error: null });
    expect(membership.asked()).toBe(2);
    expect(b.get('after-d')?.value).toBe('from a');
    expect(b.store.membership.head()).toBe(bHead + 1);
    expect(b.store.rejectedEvents()).toEqual([]);
  });

  /** a, b and c; a removes c (a new key epoch) having written `before`, then writes `after` under the new key. */
  async function newEpochUnreadByB(): Promise<{ proxy: RewritingProxy; a: Device; b: Device; bHead: number }> {
    const { proxy } = await lyingRelay();
    const { device: a, recoveryKey } = await lab.found(proxy.url, { name: 'a', transport: 'http' });
    const b = await lab.recover(proxy.url, a.identity.motebitId, recoveryKey, { name: 'b', transport: 'http' });
    const c = await lab.recover(proxy.url, a.identity.motebitId, recoveryKey, { name: 'c', transport: 'http' });
    await syncAll([a, b, c]);
    const bHead = b.store.membership.head();
    a.put('before', 'old key');
    await a.revoke(c.identity.deviceId); // syncs `before` first
    a.put('after', 'new key');
    expect((await a.syncNow()).ok).toBe(true);
    return { proxy, a, b, bHead };
  }

  it('a page with events sealed under a key this device does not hold yet: the log is read, those events opened again, and all of the page applied', async () => {
    const { proxy, b, bHead } = await newEpochUnreadByB();
    const membership = hideMembershipOnce(proxy, b, bHead);
    const result = await b.syncNow();
    expect(result).toMatchObject({ ok: true, error: null });
    expect(membership.asked()).toBe(2);
    expect(b.get('before')?.value).toBe('old key');
    expect(b.get('after')?.value).toBe('new key');
    expect(b.store.rejectedEvents()).toEqual([]);
  });

  it('when the log cannot be read within the page, that is logged, and the events it would have opened are rejected and fetched again later', async () => {
    const { proxy, a, b: opened, bHead } = await newEpochUnreadByB();
    const { device: b, log } = await lab.reopenWithLog(opened, 'b');
    let asked = 0;
    proxy.rewrite((answer) => {
      if (answer.signer !== b.identity.deviceId || !isMembership(answer)) return undefined;
      asked++;
      return asked === 1 ? { ...(answer.body as object), entries: [], head: bHead } : new WithStatus(503, { error: { code: 'unavailable', message: 'try again later' } });
    });
    const failed = await b.syncNow();
    expect(failed.ok).toBe(false);
    expect(failed.error?.kind).toBe('integrity');
    const read = messages(log.warnings, 'the membership log could not be read');
    expect(read).toHaveLength(1);
    expect(read[0]!.fields).toEqual({ error: expect.stringMatching(/^GET .*\/membership: /) as unknown });
    expect(b.get('before')?.value).toBe('old key');
    expect(b.get('after')).toBeUndefined();
    const afterId = [...a.store.events()].find((event) => event.entity === 'after')!.event_id;
    expect(b.store.rejectedEvents().map((r) => [r.eventId, r.code])).toEqual([[afterId, 'unknown_key']]);
    proxy.rewrite(null);
    expect(await b.syncNow()).toMatchObject({ ok: true, error: null });
    expect(b.get('after')?.value).toBe('new key');
  });
});

// ---- applying and rejecting a page --------------------------------------------------------------------

/** a and b (protocol 2) behind a proxy that can lie, synced; a has written `count` events and sent them. */
async function twoDevices(count: number, options: { encryption?: boolean } = {}): Promise<{ proxy: RewritingProxy; a: Device; b: Device }> {
  const { proxy } = await lyingRelay();
  const a = await lab.create(proxy.url, { name: 'a', transport: 'http', ...options });
  const b = await lab.join(a, { name: 'b', transport: 'http' });
  await syncAll([a, b]);
  for (let i = 1; i <= count; i++) a.put(`a/${i}`, i);
  expect((await a.syncNow()).ok).toBe(true);
  return { proxy, a, b };
}

/** Rewrites, in the pages `reader` pulls, the events of `writer` that `change` returns a new envelope for. */
function rewriteEvents(proxy: RewritingProxy, reader: Device, writer: Device, change: (event: StoredWireEvent) => StoredWireEvent | undefined): void {
  const writerId = writer.identity.deviceId;
  proxy.rewrite((answer) => {
    if (!isPage(answer) || answer.signer !== reader.identity.deviceId) return undefined;
    return { ...answer.body, events: answer.body.events.map((e) => (e.device_id === writerId ? (change(e) ?? e) : e)) };
  });
}

const rejectedCodes = (device: Device): [number, string][] =>
  device.store
    .rejectedEvents()
    .map((r): [number, string] => [r.deviceSeq, r.code])
    .sort((x, y) => x[0] - y[0]);

describe('applying and rejecting a received page', () => {
  it('an event that cannot be opened is recorded as rejected with why, and the page\'s rejections are logged with the first one\'s code', async () => {
    const { proxy, a, b: opened } = await twoDevices(3);
    const { device: b, log } = await lab.reopenWithLog(opened, 'b');
    rewriteEvents(proxy, b, a, (e) => (e.device_seq === 2 ? { ...e, body: flipBit(e.body) } : undefined));
    expect((await b.syncNow()).ok).toBe(false);
    expect(rejectedCodes(b)).toEqual([
      [1, 'missing_event'],
      [2, 'decrypt_failed'],
      [3, 'missing_event'],
    ]);
    expect(b.status().rejectedEvents).toBe(3);
    expect(messages(log.warnings, 'received events were rejected and not applied')).toEqual([{ fields: { count: 3, code: 'decrypt_failed' }, message: 'received events were rejected and not applied' }]);
  });

  it('a quarantined writer is fetched again once its quarantine has run out (a day), and its events apply when they verify', async () => {
    const { proxy, a, b } = await twoDevices(3, { encryption: false });
    rewriteEvents(proxy, b, a, (e) => (e.device_seq === 2 ? { ...e, body: flipBit(e.body) } : undefined));
    let clock = 1_000_000;
    const engine = engineOf(b, { now: () => clock });
    for (let cycle = 1; cycle <= 3; cycle++) expect((await engine.syncNow()).ok).toBe(false);
    expect(b.store.ledger.quarantined()).toMatchObject([{ deviceId: a.identity.deviceId }]);
    proxy.rewrite(null); // the relay serves it as written from now on
    clock += 23 * 60 * 60 * 1000;
    expect((await engine.syncNow()).ok).toBe(true);
    expect(b.get('a/2')).toBeUndefined(); // still set aside: not fetched
    expect(engine.status().quarantinedEvents).toBe(1);
    clock += 60 * 60 * 1000;
    expect((await engine.syncNow()).error).toBeNull();
    expect(b.get('a/2')?.value).toBe(2);
    expect(b.get('a/3')?.value).toBe(3);
    expect(engine.status().quarantinedEvents).toBe(0);
  });

  it('a page that records new conflicts logs how many; one that records none logs nothing about conflicts', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { name: 'a', transport: 'http' });
    const { device: b, log } = await lab.reopenWithLog(await lab.join(a, { name: 'b', transport: 'http' }), 'b');
    await syncAll([a, b]);
    a.put('calm', 1);
    expect((await a.syncNow()).ok).toBe(true);
    expect(await b.syncNow()).toMatchObject({ ok: true, pulled: 1 });
    expect(messages(log.infos, 'conflicts recorded')).toEqual([]);
    a.put('shared', 'from a');
    b.put('shared', 'from b');
    expect((await a.syncNow()).ok).toBe(true);
    expect(await b.syncNow()).toMatchObject({ ok: true, pulled: 1 });
    expect(b.status().openConflicts).toBe(1);
    expect(messages(log.infos, 'conflicts recorded')).toEqual([{ fields: { newConflicts: 1 }, message: 'conflicts recorded' }]);
  });

  it('an unsealed event served as another JSON text of itself is hashed as it arrived: its chain breaks and nothing of the writer is applied', async () => {
    const { proxy, a, b } = await twoDevices(3, { encryption: false });
    const unsealed = (e: StoredWireEvent): boolean => inner(e.body).seal === undefined;
    rewriteEvents(proxy, b, a, (e) => (e.device_seq === 1 && unsealed(e) ? { ...e, body: wireBody(JSON.stringify(inner(e.body), null, 1)) } : undefined));
    const result = await b.syncNow();
    expect(proxy.rewritten).toBeGreaterThan(0);
    expect(result.ok).toBe(false);
    expect(b.get('a/1')).toBeUndefined();
    expect(b.get('a/3')).toBeUndefined();
    expect(rejectedCodes(b).map(([seq]) => seq)).toEqual([1, 2, 3]);
  });

  it('an event that is JSON but not an event (malformed, no position in its chain) rejects its writer\'s events in the page, named by the first of them', async () => {
    const { proxy, a, b } = await twoDevices(3, { encryption: false });
    rewriteEvents(proxy, b, a, (e) => (e.device_seq === 2 ? { ...e, body: wireBody(JSON.stringify({ event_id: e.event_id, device_id: e.device_id, device_seq: e.device_seq })) } : undefined));
    const result = await b.syncNow();
    expect(result.ok).toBe(false);
    expect(result.error?.kind).toBe('integrity');
    expect(result.error?.message).toMatch(new RegExp(`^the relay served events that failed verification and were not applied: event 1 of device ${a.identity.deviceId.slice(0, 11)} \\(malformed: `));
    expect(rejectedCodes(b)).toEqual([
      [1, 'malformed'],
      [2, 'malformed'],
      [3, 'malformed'],
    ]);
  });

  it('a local failure while applying (the database refuses the write) commits nothing of the page: no rejection, the cursor stays, and the next cycle applies it', async () => {
    const { a, b } = await twoDevices(3);
    const cursor = b.store.getCursor(PULL_CURSOR);
    const db = new Database(join(b.home, '.motebit', 'device.db'));
    try {
      db.exec(`CREATE TRIGGER refuse_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'the disk refused the write'); END;`);
      const result = await b.syncNow();
      expect(result.ok).toBe(false);
      expect(result.error?.kind).toBe('local');
      expect(b.store.getCursor(PULL_CURSOR)).toBe(cursor);
      expect(b.store.rejectedEvents()).toEqual([]);
      expect(b.status().quarantinedEvents).toBe(0);
      db.exec('DROP TRIGGER refuse_events');
    } finally {
      db.close();
    }
    expect(await b.syncNow()).toMatchObject({ ok: true, pulled: 3 });
    expect(b.get('a/3')?.value).toBe(3);
    void a;
  });
});

// ---- the cursor -----------------------------------------------------------------------------------------

describe('the pull cursor', () => {
  /** b failed to verify a's event 2 once: the next cycle fetches again from before a's events, below b's cursor. */
  async function refetching(): Promise<{ proxy: RewritingProxy; a: Device; b: Device; cursor: number }> {
    const { proxy, a, b } = await twoDevices(4);
    rewriteEvents(proxy, b, a, (e) => (e.device_seq === 2 ? { ...e, body: flipBit(e.body) } : undefined));
    expect((await b.syncNow()).ok).toBe(false);
    const cursor = b.store.getCursor(PULL_CURSOR);
    expect(cursor).toBe((await b.relay.frontier()).head);
    return { proxy, a, b, cursor };
  }

  it('a page fetched again that ends below the cursor does not move it back, also when the cycle then fails', async () => {
    const { proxy, b, cursor } = await refetching();
    const before = b.store.ledger.cursorEvent();
    let pages = 0;
    proxy.rewrite((answer) => {
      if (!isPage(answer) || answer.signer !== b.identity.deviceId) return undefined;
      pages++;
      // The relay pages as it likes: one event, "more to come"; then it fails.
      return pages === 1 ? { ...answer.body, events: answer.body.events.slice(0, 1), more: true } : new WithStatus(503, { error: { code: 'unavailable', message: 'try again later' } });
    });
    const result = await b.syncNow();
    expect(result.ok).toBe(false);
    expect(pages).toBe(2);
    expect(b.store.getCursor(PULL_CURSOR)).toBe(cursor);
    expect(b.store.ledger.cursorEvent()).toEqual(before);
  });

  it('a page fetched again that ends at the cursor leaves the event the cursor names as it was, whatever the relay now says is there', async () => {
    const { proxy, b, cursor } = await refetching();
    const before = b.store.ledger.cursorEvent();
    expect(before?.seq).toBe(cursor);
    proxy.rewrite((answer) => {
      if (!isPage(answer) || answer.signer !== b.identity.deviceId) return undefined;
      // Another (well-formed) event id at the cursor's seq: the page is read, and that event rejected.
      const events = answer.body.events.filter((e) => e.seq <= cursor).map((e) => (e.seq === cursor ? { ...e, event_id: '00000000-0000-4000-8000-000000000000' } : e));
      return { ...answer.body, events, more: false };
    });
    expect((await b.syncNow()).error?.kind).toBe('integrity');
    expect(b.store.getCursor(PULL_CURSOR)).toBe(cursor);
    expect(b.store.ledger.cursorEvent()).toEqual(before);
  });
});

// ---- progress, with a clock the test moves -------------------------------------------------------------

/**
 * The device's own store and relay client, in an engine whose clock the test moves (the app's engine is not
 * started and stays idle): the relay pages `pageLimit` events at a time; `beforeFrontier` runs once the relay
 * has answered a cycle's first question, before the engine reads the answer. The motebit does not encrypt.
 */
function engineOf(device: Device, options: { now: () => number; pageLimit?: number; transport?: 'http' | 'websocket'; beforeFrontier?: () => Promise<void> }): SyncEngine {
  const { identity } = device;
  const engine = new SyncEngine({
    store: device.store,
    relay: {
      frontier: async (at) => {
        const answer = await device.relay.frontier(at);
        await options.beforeFrontier?.();
        return answer;
      },
      reenrol: () => Promise.reject(new Error('this test\'s relay always knows its devices')) },
    credentials: identity.credentials,
    connect: (kind) =>
      kind === 'websocket'
        ? new WsTransport({ relayUrl: identity.relayUrl!, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey })
        : new HttpTransport(device.relay, options.pageLimit ? { pageLimit: options.pageLimit } : {}),
    transport: options.transport ?? 'http',
    intervalMs: 60 * 60_000,
    now: options.now,
  });
  engines.push(engine);
  return engine;
}

/** Every progress `engine` reports while `run` runs. */
async function figuresDuring<T>(engine: SyncEngine, run: () => Promise<T>): Promise<{ result: T; seen: SyncProgress[] }> {
  const seen: SyncProgress[] = [];
  const stop = engine.onStatus((status) => {
    if (status.progress) seen.push(status.progress);
  });
  try {
    return { result: await run(), seen };
  } finally {
    stop();
  }
}

/** A clock that only moves when the relay answers `device` a page (by `step` ms, from the `from`th page on). */
function pageClock(proxy: RewritingProxy, device: Device, step: number, from = 1): { now: () => number } {
  let clock = 1_000_000;
  let pages = 0;
  proxy.rewrite((answer) => {
    if (isPage(answer) && answer.signer === device.identity.deviceId && ++pages >= from) clock += step;
    return undefined;
  });
  return { now: () => clock };
}

/** `device` pushes what it wrote, but its pull fails: its own events wait on the relay, beyond its cursor. */
async function pushOnly(proxy: RewritingProxy, device: Device): Promise<void> {
  proxy.rewrite((answer) => (isPage(answer) && answer.signer === device.identity.deviceId ? new WithStatus(503, { error: { code: 'unavailable', message: 'try again later' } }) : undefined));
  const result = await device.syncNow();
  proxy.rewrite(null);
  expect(result).toMatchObject({ ok: false, pushed: expect.any(Number) as unknown });
  expect(device.store.pendingOutCount()).toBe(0);
}

const pulls = (seen: SyncProgress[]): SyncProgress[] => seen.filter((p) => p.phase === 'pull');

describe('receiving progress', () => {
  // A page a second: each one counted; two pages a second: every other one.
  it.each([
    [1000, [0, 1, 2, 3, 4]],
    [500, [0, 2, 4]],
  ])('during a cycle the entity count is taken again once a second has passed since the last count, not sooner (a page every %i ms)', async (stepMs, expected) => {
    const { proxy, a, b } = await twoDevices(0, { encryption: false });
    for (let i = 1; i <= 4; i++) {
      a.put(`a/${i}`, i);
      expect((await a.syncNow()).ok).toBe(true); // each event sealed on its own: each page applies as it comes
    }
    const clock = pageClock(proxy, b, stepMs);
    const engine = engineOf(b, { now: clock.now, pageLimit: 1 });
    const seen: number[] = [];
    engine.onStatus((status) => {
      if (status.state === 'syncing' && status.entities !== undefined && seen.at(-1) !== status.entities) seen.push(status.entities);
    });
    expect(await engine.syncNow()).toMatchObject({ ok: true, pulled: 4 });
    expect(seen).toEqual(expected);
    expect(engine.status().entities).toBe(4); // counted afresh once the cycle is over
  });

  it('no time left is shown before anything is received, nor while no time has passed; then it is the pace so far times what is left', async () => {
    const { proxy, b } = await twoDevices(4, { encryption: false });
    const clock = pageClock(proxy, b, 1000, 2); // the first page arrives at once
    const engine = engineOf(b, { now: clock.now, pageLimit: 2 });
    const { result, seen } = await figuresDuring(engine, () => engine.syncNow());
    expect(result).toMatchObject({ ok: true, pulled: 4 });
    expect(pulls(seen)).toEqual([
      { phase: 'pull', done: 0, total: 4, remainingMs: null },
      { phase: 'pull', done: 2, total: 4, remainingMs: null },
      { phase: 'pull', done: 4, total: 4, remainingMs: 0 },
    ]);
  });

  it('this device\'s own events waiting on the relay shrink the total as they come back, even the one at the head; those it sends in the cycle do not count', async () => {
    const { proxy, a, b } = await twoDevices(0, { encryption: false });
    for (let i = 1; i <= 2; i++) b.put(`b/${i}`, i);
    await pushOnly(proxy, b); // relay seqs 1-2 of the range
    for (let i = 1; i <= 6; i++) a.put(`a/${i}`, i);
    expect((await a.syncNow()).ok).toBe(true); // 3-8
    for (let i = 3; i <= 4; i++) b.put(`b/${i}`, i);
    await pushOnly(proxy, b); // 9-10: the head when the measured cycle starts
    b.put('b/5', 5); // sent in the measured cycle: 11, beyond the head
    const clock = pageClock(proxy, b, 1000);
    const engine = engineOf(b, { now: clock.now, pageLimit: 2 });
    const { result, seen } = await figuresDuring(engine, () => engine.syncNow());
    expect(result).toMatchObject({ ok: true, pushed: 1, pulled: 6 });
    expect(pulls(seen)).toEqual([
      { phase: 'pull', done: 0, total: 10, remainingMs: null },
      { phase: 'pull', done: 0, total: 8, remainingMs: null }, // b's own 1-2, after 1 s
      { phase: 'pull', done: 2, total: 8, remainingMs: 6000 },
      { phase: 'pull', done: 4, total: 8, remainingMs: 3000 },
      { phase: 'pull', done: 6, total: 8, remainingMs: 1333 },
      { phase: 'pull', done: 6, total: 6, remainingMs: 0 }, // b's own 9-10
      { phase: 'pull', done: 6, total: 6, remainingMs: 0 }, // b's own 11, sent in this cycle
    ]);
  });

  it('this device\'s own events sent in the cycle do not shrink the total, also when the relay left out an event of the range', async () => {
    const { proxy, a, b } = await twoDevices(4, { encryption: false }); // a's 4: the range the measured cycle receives
    const base = b.store.getCursor(PULL_CURSOR);
    expect((await b.relay.frontier()).head - base).toBe(4);
    b.put('b/1', 1); // sent in the measured cycle, beyond the head
    let first = true;
    proxy.rewrite((answer) => {
      if (!isPage(answer) || answer.signer !== b.identity.deviceId || !first) return undefined;
      first = false; // the first page goes on past a's event 2 without it; the audit finds it missing later
      return { ...answer.body, events: answer.body.events.filter((e) => e.device_seq !== 2 || e.device_id !== a.identity.deviceId) };
    });
    const engine = engineOf(b, { now: () => 1_000_000, pageLimit: 3 });
    const { seen } = await figuresDuring(engine, () => engine.syncNow());
    // a's 1 and 3; then a's 4 and b's own: 3 of the 4 received, not 3 of 3.
    expect(pulls(seen).slice(0, 3).map(({ done, total }) => ({ done, total }))).toEqual([{ done: 0, total: 4 }, { done: 2, total: 4 }, { done: 3, total: 4 }]);
  });

  it('this device\'s own events fetched again from below its cursor do not shrink the total', async () => {
    const { proxy, a, b } = await twoDevices(0, { encryption: false });
    for (let i = 1; i <= 4; i++) a.put(`a/${i}`, i);
    expect((await a.syncNow()).ok).toBe(true); // 1-4
    b.put('b/1', 1);
    b.put('b/2', 2);
    rewriteEvents(proxy, b, a, (e) => (e.device_seq === 2 ? { ...e, body: flipBit(e.body) } : undefined));
    expect((await b.syncNow()).ok).toBe(false); // pushes 5-6; a's events fail: fetched again from 1 next time
    const base = b.store.getCursor(PULL_CURSOR);
    for (let i = 5; i <= 10; i++) a.put(`a/${i}`, i);
    expect((await a.syncNow()).ok).toBe(true); // 7-12
    const clock = pageClock(proxy, b, 1000);
    const engine = engineOf(b, { now: clock.now, pageLimit: 2 });
    const { result, seen } = await figuresDuring(engine, () => engine.syncNow());
    expect(result).toMatchObject({ ok: true, pulled: 10 });
    expect((await b.relay.frontier()).head - base).toBe(6);
    expect(pulls(seen)).toEqual([
      { phase: 'pull', done: 0, total: 6, remainingMs: null },
      { phase: 'pull', done: 2, total: 6, remainingMs: 2000 },
      { phase: 'pull', done: 4, total: 6, remainingMs: 1000 },
      { phase: 'pull', done: 4, total: 6, remainingMs: 1500 }, // b's own 5-6, at and below its cursor
      { phase: 'pull', done: 6, total: 6, remainingMs: 0 },
      { phase: 'pull', done: 8, total: 8, remainingMs: 0 },
      { phase: 'pull', done: 10, total: 10, remainingMs: 0 },
    ]);
  });
});

// ---- live pages between cycles ------------------------------------------------------------------------

/** a and b on WebSocket against a real relay (no proxy), b's socket open after a cycle; `count` more devices. */
async function liveDevices(options: { encryption?: boolean; more?: number } = {}): Promise<{ relay: RunningRelay; a: Device; b: Device; others: Device[] }> {
  const relay = await lab.relay();
  const a = await lab.create(relay.url, { name: 'a', transport: 'websocket', encryption: options.encryption ?? true });
  const b = await lab.join(a, { name: 'b', transport: 'websocket' });
  const others: Device[] = [];
  for (let i = 0; i < (options.more ?? 0); i++) others.push(await lab.join(a, { name: `o${i}`, transport: 'http' }));
  await syncAll([a, b, ...others]);
  return { relay, a, b, others };
}

/** `writer` writes an event and its device key sends it to the relay with a body no key opens: the app's engine is not used. */
async function pushUnopenable(relay: RunningRelay, writer: Device, entity: string): Promise<number> {
  writer.put(entity, 'unreadable');
  const [event] = writer.store.outboxBatch(1, writer.identity.credentials).slice(-1);
  const { identity } = writer;
  const client = new RelayClient({ relayUrl: relay.url, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey });
  const wire = toWire(event!);
  await client.push([{ ...wire, key_id: identity.kind === 'member' || !identity.encryption ? null : identity.encryptionKey.id, body: toBase64Url(Buffer.alloc(64, 7)) }]);
  return event!.device_seq;
}

describe('a live page between cycles', () => {
  it('with events that fail verification shows the error at once, in words, without waiting for the next cycle', async () => {
    const { relay, a, b } = await liveDevices();
    const seq = await pushUnopenable(relay, a, 'bad/1');
    await eventually(() => b.status().state === 'error', 'b shows the error');
    const error = b.status().lastError!;
    expect(error).toMatchObject({ kind: 'integrity', nextStep: 'sync fetches those events again' });
    expect(error.message).toMatch(new RegExp(`^the relay served events that failed verification and were not applied: event ${seq} of device ${a.identity.deviceId.slice(0, 11)} \\(decrypt_failed: `));
  });

  it('with events that fail verification while an error is shown leaves that error as it is', async () => {
    const { relay, a, b, others } = await liveDevices({ more: 1 });
    await pushUnopenable(relay, a, 'bad/1');
    await eventually(() => b.status().state === 'error', 'b shows the error');
    const first = b.status().lastError;
    await pushUnopenable(relay, others[0]!, 'bad/2');
    await eventually(() => b.store.rejectedCount() === 2, 'b rejected the second writer\'s event too');
    expect(b.status().lastError).toEqual(first);
    expect(b.status().state).toBe('error');
  });

  it('with only this device\'s own events (sent by another of its processes) is no arrival', async () => {
    const { relay, b } = await liveDevices();
    b.put('b/1', 1);
    b.put('b/2', 2);
    const { identity } = b;
    const client = new RelayClient({ relayUrl: relay.url, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey });
    const sealed = new EncryptedTransport({ inner: new HttpTransport(client), motebitId: identity.motebitId, keys: { current: { id: identity.kind === 'member' ? '' : identity.encryptionKey.id, key: identity.kind === 'member' ? Buffer.alloc(32) : identity.encryptionKey.key }, byId: () => undefined } });
    const head = (await client.push(b.store.outboxBatch(10, identity.credentials).map((e) => sealed.sealEvent(toWire(e))))).head;
    await eventually(() => b.store.getCursor(PULL_CURSOR) === head, 'b received its own events live');
    expect(b.status().lastArrival).toBeNull();
  });

  it('is told to status listeners as an arrival', async () => {
    const { a, b } = await liveDevices();
    const heard: number[] = [];
    const stop = b.engine.onStatus((status) => void (status.lastArrival && heard.push(status.lastArrival.count)));
    try {
      for (let i = 1; i <= 3; i++) a.put(`live/${i}`, i);
      expect((await a.syncNow()).ok).toBe(true);
      await eventually(() => heard.includes(3), 'a listener heard 3 changes arrive');
    } finally {
      stop();
    }
  });

  it('arrivals add up only while they come less than 10 seconds apart', async () => {
    const { a, b } = await liveDevices({ encryption: false });
    let clock = 5_000_000;
    const engine = engineOf(b, { now: () => clock, transport: 'websocket' });
    expect((await engine.syncNow()).ok).toBe(true); // its socket stays open
    const burst = async (n: number, prefix: string): Promise<void> => {
      const before = engine.status().lastArrival;
      for (let i = 0; i < n; i++) a.put(`${prefix}/${i}`, i);
      expect((await a.syncNow()).ok).toBe(true);
      await eventually(() => engine.status().lastArrival !== before && b.get(`${prefix}/${n - 1}`) !== undefined, `${prefix} arrived`);
    };
    await burst(2, 'first');
    expect(engine.status().lastArrival).toEqual({ count: 2, at: 5_000_000 });
    clock += 9_999;
    await burst(3, 'soon');
    expect(engine.status().lastArrival).toEqual({ count: 5, at: 5_009_999 });
    clock += 10_000;
    await burst(1, 'later');
    expect(engine.status().lastArrival).toEqual({ count: 1, at: 5_019_999 });
  });
});

describe('a live page during a cycle', () => {
  it('while the cycle connects, before it receives, is told to status listeners at once; landing while the frontier question is out, it is no rollback and no loss of the relay', async () => {
    const { a, b } = await liveDevices({ encryption: false });
    let gate: (() => Promise<void>) | null = null;
    const engine = engineOf(b, { now: Date.now, transport: 'websocket', beforeFrontier: () => gate?.() ?? Promise.resolve() });
    expect((await engine.syncNow()).ok).toBe(true); // its socket stays open
    a.put('shared', 'from a');
    b.put('shared', 'from b');
    const seen: { phase: string | null; openConflicts: number }[] = [];
    let heardBeforeTheRelayAnswered: (typeof seen)[number] | undefined;
    gate = async () => {
      gate = null;
      expect((await a.syncNow()).ok).toBe(true);
      await eventually(() => b.store.openConflictCount() === 1, 'a\'s event arrived live and made a conflict');
      heardBeforeTheRelayAnswered = seen.find((s) => s.openConflicts === 1); // the page itself told it, not a later step
    };
    const transports = new Set<string | null>();
    const stop = engine.onStatus((status) => {
      seen.push({ phase: status.progress?.phase ?? null, openConflicts: status.openConflicts });
      transports.add(status.transport);
    });
    try {
      expect(await engine.syncNow()).toMatchObject({ ok: true, pushed: 1 });
    } finally {
      stop();
    }
    expect(heardBeforeTheRelayAnswered).toEqual({ phase: 'connect', openConflicts: 1 });
    // The page moved the cursor past the head the relay had just answered with: no rollback, nothing fetched
    // again, and the page did not break the socket it came on.
    expect(b.store.ledger.lastRecovery()).toBeNull();
    expect([...transports]).toEqual(['websocket']);
  });

  it('of this device\'s own events echoed while it pushes does not turn the progress to receiving', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { name: 'a', transport: 'websocket' });
    a.write(Array.from({ length: 3000 }, (_, i) => ({ entity: `bulk/${i}`, op: 'set' as const, payload: i })));
    const { result, seen } = await progressDuring(a, () => a.syncNow());
    expect(result).toMatchObject({ ok: true, pushed: 3000 });
    const phases = seen.map((p) => p.phase);
    expect(phases.indexOf('pull')).toBeGreaterThan(phases.lastIndexOf('push'));
  });
});
