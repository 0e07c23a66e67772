// The engine's audit of the relay, rule by rule (issue 15: main/sync/engine.ts, joinFromSnapshot to pushAll),
// with real devices against a real relay on 127.0.0.1 (behind a rewriting proxy where the relay must lie):
// where a new device starts from a snapshot and where it does not; enrolling again only on unknown_device;
// what a restart forgets; what is sent again, with its progress and its words when it cannot be; what is
// and is not a recovery; the words of repairs and quarantine (those of withheld events: relay-recovery); a
// failed cycle's log line; and the words and progress of pushing. Log lines are pinned too: operators read them.
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Device } from '../../main/app/device.ts';
import { updateConfig } from '../../main/config/config.ts';
import { PULL_CURSOR } from '../../main/store/relay-ledger.ts';
import { toWire } from '../../main/sync/codec.ts';
import { RelayClient } from '../../main/sync/relay-client.ts';
import type { RunningRelay } from '../../relay/server.ts';
import { toBase64Url } from '../../shared/encoding.ts';
import type { StoredWireEvent } from '../../shared/portable/wire.ts';
import { Lab, freePort, openAgain, progressDuring, syncAll } from '../support/devices.ts';
import type { CapturedLog as Captured } from '../support/devices.ts';
import { WithStatus, startRewritingProxy, type Answer, type RewritingProxy } from '../support/rewriting-proxy.ts';

let lab: Lab;
const proxies: RewritingProxy[] = [];
beforeEach(() => void (lab = new Lab()));
afterEach(async () => {
  for (const proxy of proxies.splice(0)) await proxy.close();
  await lab.close();
});

// ---- helpers --------------------------------------------------------------------------------------

async function withSnapshotsEvery(device: Device, every: number): Promise<Device> {
  await updateConfig(device.home, { snapshot_every_events: every });
  await device.close();
  return openAgain(lab, device, 'http');
}

function writeMany(device: Device, prefix: string, count: number): void {
  device.write(Array.from({ length: count }, (_, i) => ({ entity: `${prefix}/${i}`, op: 'set' as const, payload: { n: i, by: prefix } })));
}

const short = (device: Device): string => device.identity.deviceId.slice(0, 11);

/** A real relay behind a proxy that can lie; `use` points the proxy at another relay (its storage replaced). */
async function lyingRelay(): Promise<{ proxy: RewritingProxy; relay: RunningRelay; use: (relay: RunningRelay) => void }> {
  let target: RunningRelay | null = null;
  const proxy = await startRewritingProxy(() => target!.url, await freePort());
  proxies.push(proxy);
  target = await lab.relay({ audience: proxy.url });
  return { proxy, relay: target, use: (relay) => void (target = relay) };
}

type Page = { events: StoredWireEvent[] } & Record<string, unknown>;
const isPage = (answer: Answer): answer is Answer & { body: Page } => answer.method === 'GET' && answer.path.endsWith('/events') && answer.status === 200;
const isPush = (answer: Answer): boolean => answer.method === 'POST' && answer.path.endsWith('/events') && answer.status === 200;
const isFrontier = (answer: Answer): boolean => answer.method === 'GET' && answer.path.endsWith('/frontier');

function flipBit(body: string): string {
  const bytes = Buffer.from(body, 'base64url');
  bytes[bytes.length >> 1]! ^= 0x01;
  return toBase64Url(bytes);
}

/** A push answer in which the relay refused every event (a gap in the writer's events, it says). */
function refusedPush(body: unknown): object {
  const answer = body as { results: { event_id: string }[] } & Record<string, unknown>;
  return { ...answer, results: answer.results.map((r) => ({ event_id: r.event_id, status: 'rejected', reason: 'device_seq_gap' })) };
}

const REFUSED_NEXT_STEP = 'this device\'s log disagrees with the relay; sync again, and if it persists report it with the output of "motebit-sync status --json"';

// ---- starting from a snapshot -------------------------------------------------------------------

describe('a new device starting from a snapshot', () => {
  /**
   * a writes 40 events and makes a snapshot of them at the end of its cycle (its place in the log: the head).
   * b is enrolled first and has not synced: until it acknowledges them, the relay compacts none of a's events.
   */
  async function snapshotAtHead(relayUrl: string): Promise<{ a: Device; b: Device; log: Captured }> {
    const a = await withSnapshotsEvery(await lab.create(relayUrl, { name: 'a', transport: 'http' }), 20);
    const { device: b, log } = await lab.reopenWithLog(await lab.join(a, { name: 'b' }), 'b');
    writeMany(a, 'memory', 40);
    expect((await a.syncNow()).ok).toBe(true);
    expect((await a.relay.latestSnapshot()).snapshot?.covers).toEqual({ [a.identity.deviceId]: 40 });
    return { a, b, log };
  }

  it('starts at the snapshot\'s place in the log: the download is shown, the place is logged, and nothing the snapshot holds is pulled again', async () => {
    const relay = await lab.relay();
    const { a, b, log } = await snapshotAtHead(relay.url);
    const latest = (await a.relay.latestSnapshot()).snapshot!;
    const head = (await a.relay.frontier()).head;
    const { result, seen } = await progressDuring(b, () => b.syncNow());
    expect(result).toMatchObject({ ok: true, pulled: 0 });
    expect(seen.filter((p) => p.phase === 'snapshot_download').at(-1)).toMatchObject({ done: latest.size, total: latest.size });
    expect(seen.filter((p) => p.phase === 'pull').at(-1)).toMatchObject({ done: 0, total: 0 });
    expect(log.infos).toContainEqual({ fields: { relay_seq: head }, message: 'started from a snapshot' });
    expect(b.store.getCursor(PULL_CURSOR)).toBe(head);
    expect(b.store.floor(a.identity.deviceId)).toBe(40);
    expect(b.store.stateDigest()).toBe(a.store.stateDigest());
  });

  it('a snapshot made before its maker ever synced names no place in the log: the new device says so and pulls the whole log', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { name: 'a', transport: 'http' });
    const { device: b, log } = await lab.reopenWithLog(await lab.join(a, { name: 'b' }), 'b'); // enrolled: nothing is compacted before it acknowledges
    writeMany(a, 'memory', 10);
    await a.makeSnapshot();
    expect((await a.syncNow()).ok).toBe(true);
    const result = await b.syncNow();
    expect(result).toMatchObject({ ok: true, pulled: 10 });
    expect(log.infos).toContainEqual({ fields: { relay_seq: null }, message: 'started from a snapshot' });
    expect(b.store.floor(a.identity.deviceId)).toBe(10);
    expect(b.store.stateDigest()).toBe(a.store.stateDigest());
  });

  it('after the relay compacted what a placeless snapshot holds, the new device counts only what it can receive and its cursor passes the stubs', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { name: 'a', transport: 'http' });
    writeMany(a, 'memory', 10);
    await a.makeSnapshot(); // before a ever synced: it names no place in the log
    expect((await a.syncNow()).ok).toBe(true);
    expect((await a.syncNow()).ok).toBe(true); // acknowledged: the relay keeps only stubs of the 10 events
    expect((await a.relay.frontier()).floors).toEqual({ [a.identity.deviceId]: 10 });

    // The log holds nothing but stubs: nothing to receive, and the cursor is past them all, so the next
    // cycle does not read the compacted log again from the start.
    const b = await lab.join(a, { name: 'b', transport: 'http' });
    const first = await progressDuring(b, () => b.syncNow());
    expect(first.result).toMatchObject({ ok: true, pulled: 0 });
    expect(first.seen.filter((p) => p.phase === 'pull').at(-1)).toMatchObject({ done: 0, total: 0 });
    expect(b.store.stateDigest()).toBe(a.store.stateDigest());
    expect(b.store.getCursor(PULL_CURSOR)).toBe((await a.relay.frontier()).head);

    // From there on, the stubs lie before the cursor: what is left to receive is what came after.
    writeMany(a, 'later', 3);
    expect((await a.syncNow()).ok).toBe(true);
    const again = await progressDuring(b, () => b.syncNow());
    expect(again.result).toMatchObject({ ok: true, pulled: 3 });
    const pulling = again.seen.filter((p) => p.phase === 'pull');
    expect([pulling[0], pulling.at(-1)]).toMatchObject([{ done: 0, total: 3 }, { done: 3, total: 3 }]);
    expect(b.store.getCursor(PULL_CURSOR)).toBe((await a.relay.frontier()).head);
  });

  const FAKE_EPOCH = `ep_${'A'.repeat(22)}`;
  const lies: [string, (answer: Answer, once: { done: boolean }) => unknown][] = [
    // Every answer the new device reads names another epoch: the log it reads is not the one the snapshot names.
    ['the log it reads has another epoch', (answer) => (typeof (answer.body as { epoch?: unknown }).epoch === 'string' ? { ...(answer.body as object), epoch: FAKE_EPOCH } : undefined)],
    // The first frontier's head is before the snapshot's place.
    ['the log it reads ends before the snapshot\'s place', (answer, once) => {
      if (once.done || !isFrontier(answer)) return undefined;
      once.done = true;
      const body = answer.body as { head: number };
      return { ...body, head: body.head - 1 };
    }],
  ];
  it.each(lies)('a snapshot whose place is not in the log the device reads (%s) is no starting place: the whole log is pulled', async (_name, lie) => {
    const { proxy } = await lyingRelay();
    const { a, b } = await snapshotAtHead(proxy.url);
    const once = { done: false };
    proxy.rewrite((answer) => (answer.signer === b.identity.deviceId ? lie(answer, once) : undefined));
    const result = await b.syncNow();
    expect(result).toMatchObject({ ok: true, pulled: 40 });
    expect(b.store.floor(a.identity.deviceId)).toBe(40); // it did start from the snapshot
    expect(proxy.rewritten).toBeGreaterThan(0);
  });

  it('a device that has pulled before does not start from a snapshot, even when nothing it pulled could be applied', async () => {
    const { proxy } = await lyingRelay();
    const a = await lab.create(proxy.url, { name: 'a', transport: 'http' });
    const b = await lab.join(a, { name: 'b', transport: 'http' });
    writeMany(a, 'memory', 5);
    expect((await a.syncNow()).ok).toBe(true);
    proxy.rewrite((answer) => (isPage(answer) && answer.signer === b.identity.deviceId ? { ...answer.body, events: answer.body.events.map((e) => ({ ...e, body: flipBit(e.body) })) } : undefined));
    expect((await b.syncNow()).ok).toBe(false);
    expect(b.store.getCursor(PULL_CURSOR)).toBeGreaterThan(0);
    expect(b.store.snapshots.isEmpty()).toBe(true);
    proxy.rewrite(null);
    await a.makeSnapshot();

    const { result, seen } = await progressDuring(b, () => b.syncNow());
    expect(result.ok).toBe(true);
    expect(seen.some((p) => p.phase === 'snapshot_download')).toBe(false);
    expect(b.store.floor(a.identity.deviceId)).toBe(0); // it holds the whole history, fetched as events
    expect(b.get('memory/4')?.value).toEqual({ n: 4, by: 'memory' });
  });
});

// ---- the relay's frontier: enrolling again, restarting --------------------------------------------

const REENROL = 'the relay does not know this device (it may have lost its data); enrolling again';
const RESTART = 'the relay log is not the one this device synced with; fetching all of it again';
const RECOVERED = 'the relay had lost data; this device sent it again';

describe('the relay\'s frontier', () => {
  it('a relay that lost its data before this device\'s first sync: the device enrols again, says so, and seeds it', async () => {
    const relay = await lab.relayAtOneUrl(join(lab.dir, 'first.db'));
    const created = await lab.create(relay.url, { name: 'a', transport: 'http' });
    writeMany(created, 'memory', 3);
    await relay.restart(join(lab.dir, 'empty.db'));
    const { device: a, log } = await lab.reopenWithLog(created, 'a');
    expect(await a.syncNow()).toMatchObject({ ok: true, pushed: 3 });
    expect(log.warnings).toEqual([{ fields: {}, message: REENROL }]); // first contact: seeding, neither a restart nor a recovery
    expect((await a.relay.frontier()).devices).toEqual([{ device_id: a.identity.deviceId, seq: 3 }]);
  });

  it('a relay replaced by an empty one: the log says the device enrols again, restarts (reason, epoch), and what it sent again', async () => {
    const relay = await lab.relayAtOneUrl(join(lab.dir, 'first.db'));
    const first = await lab.create(relay.url, { name: 'a', transport: 'http' });
    const b = await lab.join(first, { name: 'b', transport: 'http' });
    writeMany(first, 'a', 4);
    writeMany(b, 'b', 2);
    await syncAll([first, b]);
    const { device: a, log } = await lab.reopenWithLog(first, 'a');
    await relay.restart(join(lab.dir, 'empty.db'));
    const held = a.store.eventCount();
    expect(await a.syncNow()).toMatchObject({ ok: true, error: null });
    const epoch = (await a.relay.frontier()).epoch;
    expect(log.warnings).toEqual([
      { fields: {}, message: REENROL },
      { fields: { reason: 'relay_replaced', epoch }, message: RESTART },
      { fields: { reason: 'relay_replaced', resent: held }, message: RECOVERED },
    ]);
  });

  it('a frontier the relay fails to answer fails the cycle; only a relay that does not know the device makes it enrol again', async () => {
    const { proxy } = await lyingRelay();
    const { device: a, log } = await lab.reopenWithLog(await lab.create(proxy.url, { name: 'a', transport: 'http' }), 'a');
    const asked: string[] = [];
    let once = true;
    proxy.rewrite((answer) => {
      asked.push(`${answer.method} ${answer.path}`);
      if (!once || !isFrontier(answer)) return undefined;
      once = false;
      return new WithStatus(500, { error: { code: 'internal', message: 'the relay failed' } });
    });
    const result = await a.syncNow();
    expect(result.ok).toBe(false);
    expect(log.warnings.map((w) => w.message)).toEqual(['sync cycle failed']);
    expect(asked.filter((line) => line.startsWith('GET ') && line.endsWith('/frontier'))).toHaveLength(1); // not asked again after enrolling
    expect(await a.syncNow()).toMatchObject({ ok: true, error: null });
  });

  it('a restart that fails before anything is pulled leaves nothing of the old log: cursor 0, no cursor event, no repairs, the new epoch', async () => {
    const { proxy, use } = await lyingRelay();
    const a = await lab.create(proxy.url, { name: 'a', transport: 'http' });
    const b = await lab.join(a, { name: 'b', transport: 'http' });
    const bId = b.identity.deviceId;
    writeMany(a, 'a', 5);
    expect((await a.syncNow()).ok).toBe(true);
    // b's first pull is tampered with: it has a repair, a cursor and a cursor event in the old log.
    proxy.rewrite((answer) => (isPage(answer) && answer.signer === bId ? { ...answer.body, events: answer.body.events.map((e) => ({ ...e, body: flipBit(e.body) })) } : undefined));
    expect((await b.syncNow()).ok).toBe(false);
    expect(b.store.ledger.repairs()).not.toEqual([]);
    expect(b.store.ledger.cursorEvent()).not.toBeNull();
    const oldEpoch = b.store.ledger.epoch();

    // The relay's storage is replaced, and its first pages fail.
    use(await lab.relay({ audience: proxy.url, db: join(lab.dir, 'empty.db') }));
    proxy.rewrite((answer) => (isPage(answer) ? new WithStatus(500, { error: { code: 'internal', message: 'the relay failed' } }) : undefined));
    expect((await b.syncNow()).ok).toBe(false);
    proxy.rewrite(null);
    const epoch = (await b.relay.frontier()).epoch;
    expect(epoch).not.toBe(oldEpoch);
    expect(b.store.getCursor(PULL_CURSOR)).toBe(0);
    expect(b.store.ledger.cursorEvent()).toBeNull();
    expect(b.store.ledger.repairs()).toEqual([]);
    expect(b.store.ledger.epoch()).toBe(epoch);
  });

  it('a cycle on the same log keeps the transport it has: the relay is not asked to open another', async () => {
    const { proxy } = await lyingRelay();
    const a = await lab.create(proxy.url, { name: 'a', transport: 'http' });
    a.put('memory/1', 1);
    expect((await a.syncNow()).ok).toBe(true);
    const asked: string[] = [];
    proxy.rewrite((answer) => void asked.push(`${answer.method} ${answer.path}`));
    a.put('memory/2', 2);
    expect(await a.syncNow()).toMatchObject({ ok: true, pushed: 1 });
    expect(asked.some((line) => line.endsWith('/events'))).toBe(true);
    expect(asked.filter((line) => line === 'GET /healthz')).toEqual([]); // opening a transport asks for the relay's health
  });
});

// ---- sending again what the relay lacks -----------------------------------------------------------

describe('sending again what the relay lacks', () => {
  /**
   * a and b (and c, when asked) synced 5 events of a to a relay; the relay was copied; a wrote 3 more, which b
   * pulled; a is gone, and the relay is restored from the copy: only b holds a's last 3 events.
   */
  async function restoredAfterAWentAway(withC: boolean): Promise<{ aDeviceId: string; b: Device; c: Device | null }> {
    const relay = await lab.relayAtOneUrl(join(lab.dir, 'live.db'));
    const a = await lab.create(relay.url, { name: 'a', transport: 'http' });
    const b = await lab.join(a, { name: 'b', transport: 'http' });
    const c = withC ? await lab.join(a, { name: 'c', transport: 'http' }) : null;
    writeMany(a, 'old', 5);
    if (c) writeMany(c, 'c-old', 1);
    await syncAll(c ? [a, c, b] : [a, b]);
    await relay.restart(join(lab.dir, 'live.db'));
    copyFileSync(join(lab.dir, 'live.db'), join(lab.dir, 'backup.db'));
    writeMany(a, 'new', 3);
    await syncAll([a, b]);
    await a.close();
    await relay.restart(join(lab.dir, 'backup.db'));
    return { aDeviceId: a.identity.deviceId, b, c };
  }

  const resendsThree = [
    { phase: 'resend', done: 0, total: 3 },
    { phase: 'resend', done: 3, total: 3 },
  ];

  it('a relay restored from a copy that has part of a writer\'s events: only the rest is sent again, and the progress counts exactly that', async () => {
    const { aDeviceId, b } = await restoredAfterAWentAway(false);
    const { result, seen } = await progressDuring(b, () => b.syncNow());
    expect(result).toMatchObject({ ok: true, error: null });
    expect(seen.filter((p) => p.phase === 'resend')).toEqual(resendsThree);
    expect(b.status().lastRecovery).toMatchObject({ reason: 'relay_rolled_back', resent: 3 });
    expect((await b.relay.frontier()).devices).toContainEqual({ device_id: aDeviceId, seq: 8 });
  });

  it('a writer the relay holds more of than this device counts for nothing in what is sent again', async () => {
    const { b, c } = await restoredAfterAWentAway(true);
    if (!c) throw new Error('c was asked for');
    writeMany(c, 'c-new', 2);
    expect((await c.syncNow()).ok).toBe(true); // the relay now holds 3 of c's events; b holds 1

    const { result, seen } = await progressDuring(b, () => b.syncNow());
    expect(result).toMatchObject({ ok: true, error: null });
    expect(seen.filter((p) => p.phase === 'resend')).toEqual(resendsThree);
    expect(b.get('c-new/1')).toBeDefined();
  });

  /** a and b synced behind a proxy; a wrote 3 events; the relay's frontier, as b reads it, leaves a out. */
  async function frontierHidingA(): Promise<{ proxy: RewritingProxy; a: Device; b: Device; hide: (answer: Answer) => unknown }> {
    const { proxy } = await lyingRelay();
    const a = await lab.create(proxy.url, { name: 'a', transport: 'http' });
    const b = await lab.join(a, { name: 'b', transport: 'http' });
    await syncAll([a, b]);
    writeMany(a, 'a', 3);
    await syncAll([a, b]);
    const hide = (answer: Answer): unknown => {
      if (answer.signer !== b.identity.deviceId || !isFrontier(answer)) return undefined;
      const body = answer.body as { devices: { device_id: string }[] };
      return { ...body, devices: body.devices.filter((d) => d.device_id !== a.identity.deviceId) };
    };
    return { proxy, a, b, hide };
  }

  it('a relay that no longer holds a writer\'s events (not replaced, not rolled back): they are sent again, recorded as lost events', async () => {
    const { proxy, b, hide } = await frontierHidingA();
    proxy.rewrite(hide);
    expect(await b.syncNow()).toMatchObject({ ok: true, error: null });
    expect(b.status().lastRecovery).toMatchObject({ reason: 'relay_missing_events', resent: 3, message: 'The relay had lost data (it had lost some events); this device sent 3 events again.' });
  });

  it('events sent again that the relay refuses fail the cycle, in words naming whose events they were', async () => {
    const { proxy, a, b, hide } = await frontierHidingA();
    proxy.rewrite((answer) => (isPush(answer) && answer.signer === b.identity.deviceId ? refusedPush(answer.body) : hide(answer)));
    const result = await b.syncNow();
    expect(result.ok).toBe(false);
    expect(result.error).toMatchObject({ kind: 'relay', message: `the relay refused 3 of 3 events of device ${short(a)} sent again (device_seq_gap)`, nextStep: REFUSED_NEXT_STEP });
  });

  it('a device that started from a snapshot cannot send again what the snapshot left out: the cycle fails, saying so', async () => {
    const relay = await lab.relayAtOneUrl(join(lab.dir, 'first.db'));
    const full = await withSnapshotsEvery(await lab.create(relay.url, { name: 'full', transport: 'http' }), 20);
    full.write(Array.from({ length: 60 }, (_, i) => ({ entity: `memory/${i % 20}`, op: 'set' as const, payload: { n: i } })));
    expect((await full.syncNow()).ok).toBe(true);
    const joined = await lab.join(full, { name: 'joined', transport: 'http' });
    expect((await joined.syncNow()).ok).toBe(true);
    expect(joined.store.floor(full.identity.deviceId)).toBe(60);
    await relay.restart(join(lab.dir, 'empty.db'));
    const cannot = await joined.syncNow();
    expect(cannot.ok).toBe(false);
    expect(cannot.error).toMatchObject({
      kind: 'integrity',
      message: `the relay lost events of device ${short(full)} (from number 1) that this device no longer keeps: it started from a snapshot, or pruned its history below one`,
      nextStep: 'a device that still holds them sends them again when it syncs; until one does, that device\'s later events cannot reach the relay',
    });
  });

  it('a device that started from a snapshot which kept every event of a writer sends them all again to a relay that lost them', async () => {
    const relay = await lab.relayAtOneUrl(join(lab.dir, 'first.db'));
    const created = await lab.create(relay.url, { name: 'a', transport: 'http' });
    const offline = await lab.join(created, { name: 'offline', transport: 'http' });
    const a = await withSnapshotsEvery(created, 50);
    await syncAll([a, offline]);
    for (let i = 0; i < 60; i++) a.put('memory/1', { i }); // offline has seen none: every one is kept
    expect((await a.syncNow()).ok).toBe(true);
    const joiner = await lab.join(a, { name: 'joiner', transport: 'http' });
    expect((await joiner.syncNow()).ok).toBe(true);
    expect(joiner.store.floor(a.identity.deviceId)).toBe(60);
    await relay.restart(join(lab.dir, 'empty.db'));
    expect(await joiner.syncNow()).toMatchObject({ ok: true, error: null });
    expect(joiner.status().lastRecovery).toMatchObject({ reason: 'relay_replaced', resent: 60 });
    expect((await joiner.relay.frontier()).devices).toContainEqual({ device_id: a.identity.deviceId, seq: 60 });
  });

  it('a writer\'s events held here without a seal within a push\'s length cannot be sent again: a local failure, in words', async () => {
    const relay = await lab.relayAtOneUrl(join(lab.dir, 'first.db'));
    const a = await lab.create(relay.url, { name: 'a', encryption: false, transport: 'http' });
    const b = await lab.join(a, { name: 'b', transport: 'http' });
    const c = await lab.join(a, { name: 'c', transport: 'http' });
    await syncAll([a, b, c]);
    // c, misbehaving, pushes 300 events in two pushes sealing only the last one (its own store seals each push's last).
    writeMany(c, 'c', 300);
    const events = c.store.outboxBatch(300, c.identity.credentials);
    const client = new RelayClient({ relayUrl: relay.url, motebitId: c.identity.motebitId, deviceId: c.identity.deviceId, deviceKey: c.identity.deviceKey });
    await client.push(events.slice(0, 256).map(toWire));
    await client.push(events.slice(256).map(toWire));
    await c.close();
    expect((await b.syncNow()).ok).toBe(true);
    expect(b.get('c/299')?.value).toEqual({ n: 299, by: 'c' });
    await relay.restart(join(lab.dir, 'empty.db'));
    const result = await b.syncNow();
    expect(result.ok).toBe(false);
    expect(result.error).toMatchObject({ kind: 'local', message: `the events of device ${short(c)} after 0 held here have no seal`, nextStep: 'report it with the output of "motebit-sync status --json"' });
  });
});

// ---- what is, and is not, a recovery ----------------------------------------------------------------

describe('what is recorded as a recovery', () => {
  it('ordinary cycles record no recovery', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { name: 'a', transport: 'http' });
    a.put('memory/1', 1);
    expect((await a.syncNow()).ok).toBe(true);
    a.put('memory/2', 2);
    expect((await a.syncNow()).ok).toBe(true);
    expect((await a.syncNow()).ok).toBe(true);
    expect(a.status().lastRecovery).toBeNull();
  });

  it('a device that moves to a new relay seeds it with everything it holds, which is not a recovery', async () => {
    const old = await lab.relay();
    const fresh = await lab.relay({ db: join(lab.dir, 'fresh.db') });
    const moving = await lab.create(old.url, { name: 'a', transport: 'http' });
    const b = await lab.join(moving, { name: 'b', transport: 'http' });
    writeMany(moving, 'a', 3);
    writeMany(b, 'b', 2);
    await syncAll([moving, b]);
    // What moving to another relay does (AppController.moveRelay): enrol there, forget the old log, reopen on the new URL.
    const { identity } = moving;
    await moving.enrolAt(new RelayClient({ relayUrl: fresh.url, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey }));
    moving.store.ledger.forgetRelay();
    await moving.close();
    await updateConfig(moving.home, { sync_url: fresh.url });
    const a = await openAgain(lab, moving, 'http');
    expect(await a.syncNow()).toMatchObject({ ok: true, error: null });
    expect(a.status().lastRecovery).toBeNull();
    const devices = (await a.relay.frontier()).devices;
    expect(devices).toContainEqual({ device_id: a.identity.deviceId, seq: 3 });
    expect(devices).toContainEqual({ device_id: b.identity.deviceId, seq: 2 });
  });
});

// ---- repairs and quarantine ------------------------------------------------------------------------

describe('events that fail verification', () => {
  it('events that keep failing: each failed cycle says they are fetched again, the one that quarantines them says so', async () => {
    const { proxy } = await lyingRelay();
    const a = await lab.create(proxy.url, { name: 'a', transport: 'http' });
    const b = await lab.join(a, { name: 'b', transport: 'http' });
    await syncAll([a, b]);
    writeMany(a, 'a', 4);
    expect((await a.syncNow()).ok).toBe(true);
    const aId = a.identity.deviceId;
    proxy.rewrite((answer) => (isPage(answer) && answer.signer === b.identity.deviceId ? { ...answer.body, events: answer.body.events.map((e) => (e.device_id === aId && e.device_seq === 2 ? { ...e, body: flipBit(e.body) } : e)) } : undefined));
    const steps: (string | undefined)[] = [];
    for (let cycle = 1; cycle <= 3; cycle++) {
      const result = await b.syncNow();
      expect(result.error?.kind).toBe('integrity');
      expect(result.error?.message).toMatch(new RegExp(`^the relay served events that failed verification and were not applied: event 2 of device ${short(a)} \\(`));
      steps.push(result.error?.nextStep);
    }
    const again = 'none of those events was applied; each sync fetches them again. If this keeps happening the relay is faulty or tampered with: move to another relay';
    const quarantined = 'none of those events was applied. They kept failing, so they are now set aside (quarantined) and fetched again in a day; other devices\' events keep flowing. If the relay is faulty or tampered with, move to another relay';
    expect(steps).toEqual([again, again, quarantined]);
    expect(b.status().quarantinedEvents).toBe(1);
  });
});

// ---- a failed cycle, and pushing ----------------------------------------------------------------------

describe('a failed cycle, and pushing', () => {
  it('a cycle that fails (the relay is gone) is logged with its kind and words, and does not mark the device revoked', async () => {
    const relay = await lab.relay();
    const { device: a, log } = await lab.reopenWithLog(await lab.create(relay.url, { name: 'a', transport: 'http' }), 'a');
    expect((await a.syncNow()).ok).toBe(true);
    await relay.close();
    const result = await a.syncNow();
    expect(result.ok).toBe(false);
    expect(result.error?.kind).toBe('network');
    expect(log.warnings).toContainEqual({ fields: { kind: 'network', error: result.error!.message }, message: 'sync cycle failed' });
    expect(a.status()).toMatchObject({ state: 'offline', revoked: false });
  });

  it('own events the relay refuses fail the cycle in words', async () => {
    const { proxy } = await lyingRelay();
    const a = await lab.create(proxy.url, { name: 'a', transport: 'http' });
    a.put('memory/1', 1);
    proxy.rewrite((answer) => (isPush(answer) ? refusedPush(answer.body) : undefined));
    const result = await a.syncNow();
    expect(result.ok).toBe(false);
    expect(result.error).toMatchObject({ kind: 'relay', message: 'the relay refused 1 of 1 events (device_seq_gap)', nextStep: REFUSED_NEXT_STEP });
  });

  it('an ordinary cycle\'s progress: pushing counts toward the whole outbox, batch by batch, and nothing is sent again', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { name: 'a', transport: 'http' });
    a.put('memory/0', 0);
    expect((await a.syncNow()).ok).toBe(true);
    writeMany(a, 'memory', 600); // three batches
    const { result, seen } = await progressDuring(a, () => a.syncNow());
    expect(result).toMatchObject({ ok: true, pushed: 600 });
    expect(seen.filter((p) => p.phase === 'push')).toEqual([
      { phase: 'push', done: 0, total: 600 },
      { phase: 'push', done: 256, total: 600 },
      { phase: 'push', done: 512, total: 600 },
      { phase: 'push', done: 600, total: 600 },
    ]);
    expect(seen.some((p) => p.phase === 'resend')).toBe(false);
  });
});
