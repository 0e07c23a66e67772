// Devices hold their own truth (docs/protocol.md §8): against a real relay on 127.0.0.1 that loses its
// storage, is restored from an older copy, serves a tampered page once, or withholds a writer, the
// devices notice, say so, repair what they can, and converge — never reporting a failed cycle as a success.
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Device } from '../../main/app/device.ts';
import type { TransportPreference } from '../../main/sync/engine.ts';
import { RelayClient } from '../../main/sync/relay-client.ts';
import { sha256Hex } from '../../shared/crypto.ts';
import { canonicalBytes, toBase64Url } from '../../shared/encoding.ts';
import { GENESIS_HASH } from '../../shared/portable/event.ts';
import type { StoredWireEvent } from '../../shared/portable/wire.ts';
import { Lab, conflictPairs, eventually, freePort, syncAll } from '../support/devices.ts';
import { startRewritingProxy, type Answer, type RewritingProxy } from '../support/rewriting-proxy.ts';

let lab: Lab;
beforeEach(() => void (lab = new Lab()));
afterEach(() => lab.close());

function expectConverged(devices: readonly Device[]): void {
  const [first] = devices;
  for (const device of devices) {
    expect(device.store.eventsDigest()).toBe(first!.store.eventsDigest());
    expect(device.store.stateDigest()).toBe(first!.store.stateDigest());
    expect(conflictPairs(device)).toEqual(conflictPairs(first!));
    expect(device.status()).toMatchObject({ pendingOut: 0, rejectedEvents: 0, quarantinedEvents: 0, lastError: null });
  }
}

function writeMany(device: Device, prefix: string, count: number): void {
  device.write(Array.from({ length: count }, (_, i) => ({ entity: `${prefix}/${i}`, op: 'set' as const, payload: { n: i, by: prefix } })));
}

describe.each<TransportPreference>(['websocket', 'http'])('over %s', (transport) => {
  it('a relay replaced by an empty one is refilled by the first device, including a device gone for good', async () => {
    const relay = await lab.relayAtOneUrl(join(lab.dir, 'first.db'));
    const a = await lab.create(relay.url, { name: 'a', transport });
    const b = await lab.join(a, { name: 'b', transport });
    const c = await lab.join(a, { name: 'c', transport });
    writeMany(a, 'a', 300);
    writeMany(b, 'b', 40);
    writeMany(c, 'c', 20);
    b.put('shared', 'b'); // a conflict, which must survive the loss too
    c.put('shared', 'c');
    await syncAll([a, b, c]);
    expect(conflictPairs(a)).toHaveLength(1);
    await c.close(); // c is gone for good: only a and b hold its events now

    await relay.restart(join(lab.dir, 'empty.db'));
    const held = a.store.eventCount();
    a.put('after', 'written after the loss');
    const first = await a.syncNow();
    expect(first).toMatchObject({ ok: true, error: null });
    expect(a.status().lastRecovery).toMatchObject({ reason: 'relay_replaced', resent: held });
    expect(a.status().lastRecovery?.message).toBe(`The relay had lost data (its storage was replaced by an empty one); this device sent ${held} events again.`);

    const second = await b.syncNow();
    expect(second.ok).toBe(true);
    expect(b.status().lastRecovery).toMatchObject({ reason: 'relay_replaced', resent: 0 }); // a had refilled it
    expect(b.get('after')?.value).toBe('written after the loss');

    // A newcomer gets everything, c's events included, each once.
    const d = await lab.join(a, { name: 'd', transport });
    await syncAll([a, b, d]);
    expect(d.get('c/19')?.value).toEqual({ n: 19, by: 'c' });
    expect(d.store.eventCount()).toBe(held + 1);
    expectConverged([a, b, d]);
  });

  it('a relay restored from an older copy, then grown again, loses nothing and hides nothing', async () => {
    const relay = await lab.relayAtOneUrl(join(lab.dir, 'live.db'));
    const a = await lab.create(relay.url, { name: 'a', transport });
    const b = await lab.join(a, { name: 'b', transport });
    writeMany(a, 'a-old', 5);
    await syncAll([a, b]);
    await relay.restart(join(lab.dir, 'live.db')); // checkpointed: the file alone is the database
    copyFileSync(join(lab.dir, 'live.db'), join(lab.dir, 'backup.db'));

    writeMany(a, 'a-new', 5);
    writeMany(b, 'b', 3);
    await syncAll([a, b]); // acknowledged by the relay ...
    await relay.restart(join(lab.dir, 'backup.db')); // ... and lost: the operator restored last night's copy

    // A device that joins now knows nothing of what was lost, and writes: the log grows past a's cursor.
    const c = await lab.join(a, { name: 'c', transport });
    expect((await c.syncNow()).ok).toBe(true);
    writeMany(c, 'c', 9);
    expect((await c.syncNow()).ok).toBe(true);

    const healed = await a.syncNow();
    expect(healed).toMatchObject({ ok: true, error: null });
    expect(a.status().lastRecovery).toMatchObject({ reason: 'relay_rolled_back', resent: 5 + 3 }); // its own and b's
    await syncAll([a, b, c]);
    expect(c.get('b/2')?.value).toEqual({ n: 2, by: 'b' });
    expect(a.get('c/8')?.value).toEqual({ n: 8, by: 'c' });
    expectConverged([a, b, c]);
  });
});

/** Devices on HTTP behind a proxy that can lie; the relay itself is honest. */
async function lyingRelay(): Promise<{ proxy: RewritingProxy; a: Device; b: Device }> {
  const port = await freePort();
  const proxy = await startRewritingProxy(() => relay.url, port);
  const relay = await lab.relay({ audience: proxy.url });
  const a = await lab.create(proxy.url, { name: 'a', transport: 'http' });
  const b = await lab.join(a, { name: 'b', transport: 'http' });
  return { proxy, a, b };
}

/** Three synced devices of an unencrypted motebit on a real relay, b on `bTransport`, and c's own client of the relay API (c pushes what its store never would). */
async function withMisbehavingMember(bTransport: TransportPreference): Promise<{ a: Device; b: Device; c: Device; client: RelayClient }> {
  const relay = await lab.relay();
  const a = await lab.create(relay.url, { name: 'a', encryption: false, transport: 'http' });
  const b = await lab.join(a, { name: 'b', transport: bTransport });
  const c = await lab.join(a, { name: 'c', transport: 'http' });
  await syncAll([a, b, c]);
  const client = new RelayClient({ relayUrl: relay.url, motebitId: c.identity.motebitId, deviceId: c.identity.deviceId, deviceKey: c.identity.deviceKey });
  return { a, b, c, client };
}

type Page = { events: StoredWireEvent[] } & Record<string, unknown>;
const isPage = (answer: Answer): answer is Answer & { body: Page } => answer.method === 'GET' && answer.path.endsWith('/events') && answer.status === 200;

// Each alters a page of one writer's events; those that break its chain leave nothing of the page applicable.
const tamperings: [string, (events: StoredWireEvent[]) => StoredWireEvent[], { breaksChain: boolean }][] = [
  ['one flipped ciphertext bit', (events) => events.map((e, i) => (i === 1 ? { ...e, body: flipBit(e.body) } : e)), { breaksChain: true }],
  ['two bodies swapped', (events) => events.map((e, i) => (i === 1 ? { ...e, body: events[2]!.body } : i === 2 ? { ...e, body: events[1]!.body } : e)), { breaksChain: true }],
  ['a middle event dropped', (events) => events.filter((_, i) => i !== 2), { breaksChain: true }],
  // A forged second version of an event, with its own id, in the middle of the page.
  ['an event injected', (events) => [...events.slice(0, 2), { ...events[1]!, event_id: INJECTED, body: flipBit(events[1]!.body) }, ...events.slice(2)].map((e, i) => ({ ...e, seq: events[0]!.seq + i })), { breaksChain: false }],
];
const INJECTED = '00000000-0000-4000-8000-00000000dead';

function flipBit(body: string): string {
  const bytes = Buffer.from(body, 'base64url');
  bytes[bytes.length >> 1]! ^= 0x01;
  return toBase64Url(bytes);
}

describe('a relay that serves bad data', () => {
  it.each(tamperings)('%s, once: the cycle fails and says so, nothing bad is applied, the next cycle catches up', async (_name, tamper, { breaksChain }) => {
    const { proxy, a, b } = await lyingRelay();
    writeMany(a, 'a', 5);
    writeMany(b, 'b', 2);
    await syncAll([a, b]);
    writeMany(a, 'later', 6);
    expect((await a.syncNow()).ok).toBe(true);
    let once = true;
    proxy.rewrite((answer) => {
      if (!once || !isPage(answer) || answer.body.events.length < 4) return undefined;
      once = false;
      return { ...answer.body, events: tamper(answer.body.events) };
    });
    const before = b.store.stateDigest();
    const bad = await b.syncNow();
    expect(proxy.rewritten).toBe(1);
    expect(bad.ok).toBe(false);
    expect(bad.error).toMatchObject({ kind: 'integrity' });
    expect(bad.error?.message).toContain(a.identity.deviceId.slice(0, 11));
    expect(b.status()).toMatchObject({ state: 'error' });
    expect([...b.store.events()].some((event) => event.event_id === INJECTED)).toBe(false);
    if (breaksChain) {
      expect(b.store.stateDigest()).toBe(before); // nothing of the tampered writer's page was applied
      expect(b.get('later/0')).toBeUndefined();
    }

    proxy.rewrite(null); // honest again
    expect(await b.syncNow()).toMatchObject({ ok: true, error: null });
    expect(b.get('later/5')?.value).toEqual({ n: 5, by: 'later' });
    expect(b.store.ledger.repairs()).toEqual([]);
    expectConverged([a, b]);
  });

  it('events that keep failing are quarantined after three cycles, visibly, and block no other writer', async () => {
    const { proxy, a, b } = await lyingRelay();
    const c = await lab.join(a, { name: 'c', transport: 'http' });
    await syncAll([a, b, c]);
    writeMany(a, 'a', 4);
    expect((await a.syncNow()).ok).toBe(true);
    const aId = a.identity.deviceId;
    const bId = b.identity.deviceId;
    proxy.rewrite((answer) => (isPage(answer) && answer.signer === bId ? { ...answer.body, events: answer.body.events.map((e) => (e.device_id === aId && e.device_seq === 2 ? { ...e, body: flipBit(e.body) } : e)) } : undefined));
    for (let cycle = 1; cycle <= 3; cycle++) {
      c.put(`c/${cycle}`, cycle); // another writer keeps writing
      expect((await c.syncNow()).ok).toBe(true);
      const result = await b.syncNow();
      expect({ cycle, ok: result.ok, error: result.error?.message }).toMatchObject({ cycle, ok: false });
      expect(result.error?.kind).toBe('integrity');
      expect(b.get(`c/${cycle}`)?.value).toBe(cycle); // c's events are not held up by a's bad one
    }
    // Quarantined: shown in the status, no longer fetched again, and the cycle no longer fails for it.
    const quiet = await b.syncNow();
    expect(quiet.ok).toBe(true);
    expect(b.status().quarantinedEvents).toBe(1);
    expect(b.store.ledger.quarantined()[0]).toMatchObject({ deviceId: aId, deviceSeq: 2, code: 'decrypt_failed' });
    expect(b.get('a/0')).toBeUndefined();
  });

  it('a quarantined writer\'s events arriving live between cycles fail nothing: the status stays as it was', async () => {
    const { b, c, client } = await withMisbehavingMember('websocket');
    // c, misbehaving, pushes its events with their values altered after sealing.
    c.put('c/1', 'one');
    c.put('c/2', 'two');
    const [first, second] = c.store.outboxBatch(1, c.identity.credentials).concat(c.store.outboxBatch(1, c.identity.credentials, 1));
    const altered = (event: typeof first) => ({ event_id: event!.event_id, device_id: event!.device_id, device_seq: event!.device_seq, key_id: null, body: toBase64Url(Buffer.from(JSON.stringify({ ...event, payload: 'altered' }))) });
    await client.push([altered(first)]);
    for (let cycle = 1; cycle <= 3; cycle++) expect((await b.syncNow()).ok).toBe(false);
    expect(await b.syncNow()).toMatchObject({ ok: true, error: null });
    expect(b.store.ledger.quarantined()).toMatchObject([{ deviceId: c.identity.deviceId, deviceSeq: 1 }]);
    // Its next event reaches b live, over the WebSocket, and cannot be applied either (its chain misses 1).
    await client.push([altered(second)]);
    await eventually(() => b.store.rejectedEvents().some((r) => r.deviceId === c.identity.deviceId && r.deviceSeq === 2), 'b received it');
    expect(b.status()).toMatchObject({ state: 'idle', lastError: null, quarantinedEvents: 1 });
  });

  it('a writer the relay holds but does not send is reported, and fetched as soon as it is served', async () => {
    const { proxy, a, b } = await lyingRelay();
    writeMany(a, 'a', 3);
    expect((await a.syncNow()).ok).toBe(true);
    const aId = a.identity.deviceId;
    proxy.rewrite((answer) => (isPage(answer) ? { ...answer.body, events: answer.body.events.filter((e) => e.device_id !== aId) } : undefined));
    const hidden = await b.syncNow();
    expect(hidden.ok).toBe(false);
    expect(hidden.error?.kind).toBe('integrity');
    expect(hidden.error?.message).toMatch(/holds events it did not send: device dv_\S+ \(this device has 0 of its 3 events\)/);
    expect(hidden.error?.nextStep).toBe('sync again later; if this keeps happening the relay is faulty or withholding events');
    proxy.rewrite(null);
    expect((await b.syncNow()).ok).toBe(true);
    expect(b.get('a/2')?.value).toEqual({ n: 2, by: 'a' });
  });

  it('a writer the relay skipped once is fetched with the whole log in the same cycle: progress starts over, the recovery is recorded', async () => {
    const { proxy, a, b } = await lyingRelay();
    const c = await lab.join(a, { name: 'c', transport: 'http' });
    writeMany(c, 'c', 2);
    expect((await c.syncNow()).ok).toBe(true);
    writeMany(a, 'a', 3);
    expect((await a.syncNow()).ok).toBe(true);
    const aId = a.identity.deviceId;
    let once = true;
    proxy.rewrite((answer) => {
      if (!once || !isPage(answer)) return undefined;
      once = false;
      return { ...answer.body, events: answer.body.events.filter((e) => e.device_id !== aId) };
    });
    const pulls: { done: number; total: number | null }[] = [];
    b.engine.onStatus(({ progress }) => {
      if (progress?.phase === 'pull') pulls.push({ done: progress.done, total: progress.total });
    });
    const result = await b.syncNow();
    expect(result).toMatchObject({ ok: true, error: null });
    expect(b.get('a/2')?.value).toEqual({ n: 2, by: 'a' });
    expect(b.get('c/1')?.value).toEqual({ n: 1, by: 'c' });
    // c's 2 events came in the page that skipped a's; then the pull starts over from nothing, out of the whole log.
    const skipped = pulls.findIndex((p) => p.done === 2);
    expect(skipped).toBeGreaterThanOrEqual(0);
    expect(pulls.slice(skipped + 1)[0]).toEqual({ done: 0, total: 5 });
    expect(b.status().lastRecovery).toMatchObject({ reason: 'relay_skipped_events', resent: 0 });
  });

  it('events another device has seen but the relay withholds (and hides from its frontier) are reported', async () => {
    const { proxy, a, b } = await lyingRelay();
    const c = await lab.join(a, { name: 'c', transport: 'http' });
    writeMany(a, 'a', 3);
    await syncAll([a, c]);
    c.put('c/saw-a', true); // c's signed clock now says it had a's 3 events
    expect((await c.syncNow()).ok).toBe(true);
    const aId = a.identity.deviceId;
    proxy.rewrite((answer) => {
      if (isPage(answer)) return { ...answer.body, events: answer.body.events.filter((e) => e.device_id !== aId) };
      if (answer.path.endsWith('/frontier')) {
        const body = answer.body as { devices: { device_id: string }[] };
        return { ...body, devices: body.devices.filter((d) => d.device_id !== aId) };
      }
      return undefined;
    });
    const withheld = await b.syncNow();
    expect(withheld).toMatchObject({ ok: false });
    expect(withheld.error).toMatchObject({
      kind: 'integrity',
      message: `the relay is missing events: device ${aId.slice(0, 11)} (this device has 0 of its 3 events)`,
      nextStep: 'another device has seen them, so they exist; sync again later, and bring that device online so it can send them again. If this keeps happening the relay is withholding them',
    });
    expect(b.get('c/saw-a')?.value).toBe(true);
    proxy.rewrite(null);
    expect((await b.syncNow()).ok).toBe(true);
    await syncAll([a, b, c]);
    expectConverged([a, b, c]);
  });

  it('a body nested thousands deep from an enrolled device is one reported event, not a crash', async () => {
    const { a, b, c, client } = await withMisbehavingMember('http');
    // c, misbehaving, writes a genuine, sealed event whose payload is nested 5,000 deep (its own store
    // would refuse it, so it is made by hand).
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const fields = {
      v: 1,
      motebit_id: c.identity.motebitId,
      device_id: c.identity.deviceId,
      event_id: crypto.randomUUID(),
      device_seq: 1,
      prev: GENESIS_HASH,
      clock: { l: 1, v: { [c.identity.deviceId]: 1 } },
      entity: 'deep',
      op: 'set',
      ts: Date.now(),
    };
    // Canonical JSON by hand (keys sorted; the payload sorts between op and prev), so nothing here recurses.
    const sorted = Object.fromEntries(Object.entries(fields).sort(([x], [y]) => (x < y ? -1 : 1)));
    const unsealedText = JSON.stringify(sorted).replace('"prev":', `"payload":${deep},"prev":`);
    const hash = sha256Hex(unsealedText);
    const sig = c.identity.credentials.deviceKey.sign(canonicalBytes({ t: 'motebit/seal/v1', motebit_id: fields.motebit_id, device_id: fields.device_id, device_seq: 1, hash }));
    const seal = { cert: c.identity.credentials.cert, key: toBase64Url(c.identity.credentials.deviceKey.publicKey), sig: toBase64Url(sig) };
    const sealedText = `${unsealedText.slice(0, -1)},"seal":${JSON.stringify(seal)}}`;
    await client.push([{ event_id: fields.event_id, device_id: c.identity.deviceId, device_seq: 1, key_id: null, body: toBase64Url(Buffer.from(sealedText)) }]);
    a.put('a/1', 'still flows');
    expect(await a.syncNow()).toMatchObject({ ok: false, pushed: 1 }); // a receives the bad event too, and says so
    const result = await b.syncNow();
    expect(result.ok).toBe(false);
    expect(result.error?.message).toMatch(/nested deeper than/);
    expect(b.get('a/1')?.value).toBe('still flows');
  });
});
